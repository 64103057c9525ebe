/**
 * The message kinds: what each failure says, under which catalog code. A throw site names a kind and passes
 * the values; it never composes the text. Texts that AWS defines are AWS's, word for word. Grouped by the
 * context that raises them; docs/errors.md is rendered from this table (errors.test.ts checks it is current).
 * @example throw E.PolicyNotFound({ policyName: name });
 */
import { defineKinds } from './template.js';

export const E = defineKinds({
  // ---- shared by every context's API
  MissingParameter: ['InvalidRequest', '{name} is required', 'A required request member is absent or empty.'],
  ValidationError: [
    'InvalidRequest',
    '1 validation error detected: {violation}',
    "One member of the request breaks the operation's input schema (AWS's validation message).",
  ],
  ValidationErrors: [
    'InvalidRequest',
    '{count:number} validation errors detected: {violations}',
    "Several members of the request break the operation's input schema; the violations are joined with '; '.",
  ],
  ViolationNull: [
    'InvalidRequest',
    "Value null at '{member}' failed to satisfy constraint: Member must not be null",
    'Part of a validation message: a required member is missing.',
  ],
  ViolationUnknownMembers: [
    'InvalidRequest',
    "Unknown member(s) {members:list} at '{path}'",
    'Part of a validation message: the object has members the operation does not define.',
  ],
  ViolationConstraint: [
    'InvalidRequest',
    "Value '{value}' at '{member}' failed to satisfy constraint: {constraint}",
    'Part of a validation message: a member has a value its schema refuses.',
  ],
  MemberNull: [
    'InvalidRequest',
    "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null",
    'A required member is missing (AWS validation message).',
  ],
  MemberConstraint: [
    'InvalidRequest',
    "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}",
    'A member (path, query or body) has a value its constraint refuses (AWS validation message).',
  ],
  MemberType: [
    'InvalidRequest',
    "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must be {expected}",
    'A body member has the wrong JSON type (AWS validation message).',
  ],

  // ---- api: the AWS-compatible HTTP front
  MalformedPathSegment: [
    'InvalidRequest',
    "Malformed percent-encoding in path segment '{segment}'.",
    'A path segment is not valid percent-encoding.',
  ],
  BodyTooLarge: [
    'EntityTooLarge',
    'The request body exceeds {limit:number} bytes.',
    'The HTTP request body is larger than limits.maxApiBodyBytes.',
  ],
  BodyNotJson: [
    'InvalidRequest',
    'The request body is not valid JSON.',
    'A JSON operation received a body that does not parse.',
  ],
  BodyNotObject: [
    'InvalidRequest',
    'The request body must be a JSON object.',
    'A JSON operation received a body that is an array, a scalar or null.',
  ],
  NoSuchOperation: [
    'ResourceNotFound',
    'No {service} operation matches {method} {path}; check the endpoint and the service name in the credential scope.',
    'A signed request matches no route of the service named in its credential scope.',
  ],
  OperationNotPermitted: [
    'AccessDenied',
    "User: {accessKeyId} is not authorized to perform: {service}:{operation} (the key's role is {role}).",
    'A read-only access key calls an operation that changes state.',
  ],
  UnhandledFailure: [
    'InternalFailure',
    'Internal failure (request id {requestId}).',
    'An operation failed with something other than a ThingsteadError (a bug); the cause is logged under the request id.',
  ],

  // ---- sigv4: request signatures (texts as AWS sends them)
  SignatureMismatch: [
    'InvalidSignature',
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    'The signature is malformed or does not match the canonical request signed with the secret key.',
  ],
  SigV4PresignedScope: [
    'InvalidSignature',
    "Credential should be scoped to a valid region. '{credential}'",
    'A presigned URL (X-Amz-Credential) has a credential scope that is not key/date/region/service/aws4_request.',
  ],
  SigV4MissingToken: [
    'MissingAuthenticationToken',
    'Missing Authentication Token',
    'A request has neither an Authorization header nor a presigned query.',
  ],
  SigV4Algorithm: [
    'InvalidSignature',
    'Authorization header requires the AWS4-HMAC-SHA256 algorithm. Authorization={algorithm}',
    'The Authorization header names an algorithm other than AWS4-HMAC-SHA256.',
  ],
  SigV4MissingParameter: [
    'InvalidSignature',
    "Authorization header requires '{parameter}' parameter.",
    'Part of SigV4MissingParameters: one of Credential, SignedHeaders, Signature is absent.',
  ],
  SigV4MissingParameters: [
    'InvalidSignature',
    '{missing} Authorization={authorization}...',
    'The Authorization header lacks Credential, SignedHeaders or Signature (one sentence per missing parameter).',
  ],
  SigV4Scope: [
    'InvalidSignature',
    "Credential should be scoped to a valid region, service and 'aws4_request' terminator. '{credential}'",
    'The Authorization credential scope is not key/date/region/service/aws4_request.',
  ],
  SigV4Region: [
    'InvalidSignature',
    "Credential should be scoped to a valid region, not '{region}'. This endpoint serves '{served}'.",
    'The credential scope names a region other than the configured one.',
  ],
  SigV4MissingDate: [
    'InvalidSignature',
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    'A signed request carries no X-Amz-Date.',
  ],
  SigV4DateFormat: [
    'InvalidSignature',
    "Date must be in ISO-8601 'basic format'. Got '{amzDate}'.",
    'X-Amz-Date is not YYYYMMDDTHHMMSSZ.',
  ],
  SigV4DateScope: [
    'InvalidSignature',
    'Credential should be scoped to a valid date: the credential date {date} does not match x-amz-date {amzDate}.',
    'The credential scope date is not the day of X-Amz-Date.',
  ],
  SigV4Expired: [
    'InvalidSignature',
    'Signature expired: {amzDate} is now earlier than {earliest} ({now} - 5 min.)',
    'X-Amz-Date is more than 5 minutes in the past.',
  ],
  SigV4NotYetCurrent: [
    'InvalidSignature',
    'Signature not yet current: {amzDate} is still later than {latest} ({now} + 5 min.)',
    'X-Amz-Date is more than 5 minutes in the future.',
  ],
  SigV4UnknownKey: [
    'UnrecognizedClient',
    'The security token included in the request is invalid.',
    'The access key id is not one the platform knows.',
  ],
  SigV4HostNotSigned: [
    'InvalidSignature',
    "'Host' must be a 'SignedHeader' in the AWS Authorization.",
    'SignedHeaders does not include host.',
  ],
  SigV4SignedHeaderMissing: [
    'InvalidSignature',
    "The header '{header}' is listed in SignedHeaders but is missing.",
    'A header named in SignedHeaders is absent from the request.',
  ],
  SigV4PayloadHash: [
    'InvalidSignature',
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
    'x-amz-content-sha256 is not the SHA-256 of the body received.',
  ],

  // ---- mqtt: the broker's in-process API (devices get reason codes, not these)
  PublishTopicName: [
    'InvalidRequest',
    'invalid topic name: {topic}',
    'broker.publish from the platform (API, rules) with a topic that is not a valid topic name (shown as JSON).',
  ],
  PublishProperties: [
    'InvalidRequest',
    'invalid publish properties: {reason}',
    'broker.publish with properties that would not encode, or with topicAlias/subscriptionIdentifier (set per delivery).',
  ],
  RetainedQuota: [
    'LimitExceeded',
    '{reason}',
    'A platform publish with retain would pass limits.maxRetained* (the text names the limit: in total, bytes or per client).',
  ],
  PublishNotStored: [
    'ServiceUnavailable',
    'the message could not be stored ({reason}); retry later',
    'broker.publishDurably: the store did not commit the message (the store failure code is shown).',
  ],
  SubscribeTopicFilter: [
    'InvalidRequest',
    'invalid topic filter: {filter}',
    'broker.subscribeInternal with a filter that is not a valid topic filter (shown as JSON).',
  ],
  ServiceDuplicate: [
    'InvalidRequest',
    'a service named {service} is already registered',
    'A reserved-topic service registers under a name already in use.',
  ],
  ServiceNoFilters: [
    'InvalidRequest',
    'service {service} has no filters',
    'A reserved-topic service registers no filters.',
  ],
  ServiceFilter: [
    'InvalidRequest',
    'service {service}: filter {filter} {problem}',
    'A reserved-topic service filter is invalid, outside a $ namespace, or inside a broker-owned one.',
  ],

  // ---- json: bounded parsing of outside JSON
  JsonTooDeep: [
    'InvalidRequest',
    '{what} exceeds the maximum JSON nesting depth of {maxDepth:number} (limits.maxJsonDepth).',
    'A JSON document from outside (API body, payload, attributes) nests deeper than limits.maxJsonDepth.',
  ],
  JsonTooLarge: [
    'EntityTooLarge',
    '{what} exceeds {maxBytes:number} bytes.',
    'A JSON document from outside is larger than the size limit its caller set.',
  ],

  // ---- policy: documents, versions, attachments, authorizer test
  PolicyNotFound: [
    'ResourceNotFound',
    'Policy {policyName} not found',
    'An operation names a policy that does not exist.',
  ],
  PolicyVersionNotFound: [
    'ResourceNotFound',
    'Policy {policyName} has no version {versionId}',
    'A policy version operation names a version the policy does not have.',
  ],
  PolicyAlreadyExists: [
    'ResourceAlreadyExists',
    'Policy {policyName} already exists',
    'CreatePolicy names an existing policy.',
  ],
  PolicyName: [
    'InvalidRequest',
    'policyName must match [\\w+=,.@-]{1,128}; got {name}',
    'A policy name is empty, too long or has characters outside [\\w+=,.@-] (the name is shown as JSON).',
  ],
  PolicyVersionId: [
    'InvalidRequest',
    'policyVersionId must be a number',
    'A policy version id is not a number.',
  ],
  PolicyDocumentNotString: [
    'MalformedPolicy',
    'policyDocument must be a JSON string (in Python: json.dumps(document))',
    'policyDocument is sent as an object instead of the JSON text AWS takes.',
  ],
  PolicyAttached: [
    'DeleteConflict',
    'Policy {policyName} is attached to {count:number} target(s); detach it first',
    'DeletePolicy on a policy still attached to certificates or thing groups.',
  ],
  PolicyHasVersions: [
    'DeleteConflict',
    'Policy {policyName} has non-default versions; delete them (DeletePolicyVersion) before deleting the policy',
    'DeletePolicy on a policy that still has non-default versions.',
  ],
  PolicyVersionsLimit: [
    'VersionsLimitExceeded',
    'Policy {policyName} already has {max:number} versions; delete one (DeletePolicyVersion) first',
    'CreatePolicyVersion on a policy that has the maximum number of versions (5).',
  ],
  PolicyDefaultVersion: [
    'DeleteConflict',
    'Version {versionId} is the default version of policy {policyName}; set another default first',
    'DeletePolicyVersion on the default version.',
  ],
  PolicyTargetLimit: [
    'LimitExceeded',
    'Target {target} already has {max:number} policies attached',
    'AttachPolicy on a target that has the maximum number of policies (10).',
  ],
  PolicyTargetNotFound: [
    'ResourceNotFound',
    'Target {target} not found',
    'AttachPolicy names a certificate or thing group that does not exist.',
  ],
  PolicyTargetIsThing: [
    'InvalidRequest',
    "Policies attach to certificates and thing groups, not to things: attach it to the thing's certificate ARN (arn:aws:iot:<region>:<account>:cert/<certificateId>) instead of {target}",
    'AttachPolicy names a thing ARN as the target.',
  ],
  PolicyTargetInvalid: [
    'InvalidRequest',
    'target {target} is not a certificate ARN, a thing-group ARN or "{anonymous}"',
    'AttachPolicy names a target that is not a certificate ARN, a thing-group ARN or the anonymous target.',
  ],
  PrincipalUnresolvable: [
    'InvalidRequest',
    'principal {principal}: {reason}',
    'TestAuthorization or GetEffectivePolicies names a principal that cannot be resolved.',
  ],
  AuthInfosRequired: [
    'InvalidRequest',
    'authInfos must list at least one {actionType, resources}',
    'TestAuthorization without authInfos.',
  ],
  AuthInfoActionType: [
    'InvalidRequest',
    'actionType must be one of {actionTypes:list}',
    'TestAuthorization with an actionType other than PUBLISH, SUBSCRIBE, RECEIVE, CONNECT.',
  ],
  PolicyDocProblem: [
    'MalformedPolicy',
    '{path}: {problem}',
    'A policy document breaks the IAM grammar: the JSON path of the problem, then one of the PolicyDoc texts (the error carries that kind).',
  ],
  PolicyDocEmpty: [
    'MalformedPolicy',
    'the policy document is empty',
    'The policy document is empty or blank.',
  ],
  PolicyDocTooLong: [
    'MalformedPolicy',
    'the policy document has {size:number} characters excluding whitespace; the maximum is {max:number}',
    'The policy document is longer than AWS allows (2048 characters excluding whitespace).',
  ],
  PolicyDocNotJson: [
    'MalformedPolicy',
    'the policy document is not valid JSON: {reason}',
    'The policy document does not parse as JSON.',
  ],
  PolicyDocNotObject: [
    'MalformedPolicy',
    'the policy document must be a JSON object, got {type}',
    'The policy document is JSON but not an object.',
  ],
  PolicyDocUnknownElement: [
    'MalformedPolicy',
    'unknown top-level element (expected Version, Statement, Id)',
    'The document has a top-level member other than Version, Statement, Id.',
  ],
  PolicyDocVersion: [
    'MalformedPolicy',
    'must be "2012-10-17", got {version}',
    'Version is not "2012-10-17" (the value is shown as JSON).',
  ],
  PolicyDocRequired: ['MalformedPolicy', 'is required', 'Statement is missing.'],
  PolicyDocNoStatements: [
    'MalformedPolicy',
    'must contain at least one statement',
    'Statement is an empty array.',
  ],
  PolicyDocStatementNotObject: [
    'MalformedPolicy',
    'a statement must be an object, got {type}',
    'A statement is not an object.',
  ],
  PolicyDocStatementElement: [
    'MalformedPolicy',
    'unknown statement element (expected one of {elements:list})',
    'A statement has a member other than Sid, Effect, Action, NotAction, Resource, NotResource, Condition.',
  ],
  PolicyDocNotString: ['MalformedPolicy', 'must be a string', 'Sid is not a string.'],
  PolicyDocEffectRequired: [
    'MalformedPolicy',
    'is required ("Allow" or "Deny")',
    'A statement has no Effect.',
  ],
  PolicyDocEffect: [
    'MalformedPolicy',
    'must be "Allow" or "Deny", got {effect}',
    'Effect is neither "Allow" nor "Deny" (the value is shown as JSON).',
  ],
  PolicyDocActionOrNot: [
    'MalformedPolicy',
    'a statement needs exactly one of Action or NotAction',
    'A statement has both or neither of Action and NotAction.',
  ],
  PolicyDocResourceOrNot: [
    'MalformedPolicy',
    'a statement needs exactly one of Resource or NotResource',
    'A statement has both or neither of Resource and NotResource.',
  ],
  PolicyDocStringList: [
    'MalformedPolicy',
    '{what} must be a string or an array of strings, got {type}',
    'Action, NotAction, Resource or NotResource is neither a string nor an array.',
  ],
  PolicyDocListEmpty: [
    'MalformedPolicy',
    '{what} must not be empty',
    'Action, NotAction, Resource or NotResource is an empty array.',
  ],
  PolicyDocItemType: [
    'MalformedPolicy',
    'must be a string, got {type}',
    'An entry of an action, resource or condition value list is not a string.',
  ],
  PolicyDocItemEmpty: [
    'MalformedPolicy',
    'must not be empty',
    'An entry of an action or resource list is empty.',
  ],
  PolicyDocAction: [
    'MalformedPolicy',
    '"{action}" is not an action: write service:Action, e.g. "iot:Publish" or "iot:*"',
    'An action is not service:Action or *.',
  ],
  PolicyDocResource: [
    'MalformedPolicy',
    '"{resource}" is not a resource: write "*" or an ARN such as "arn:aws:iot:us-east-1:123456789012:topic/a/b"',
    'A resource is neither * nor an ARN.',
  ],
  PolicyDocArn: [
    'MalformedPolicy',
    '"{resource}" is not a valid ARN: expected arn:partition:service:region:account:resource',
    'A resource ARN has fewer than six parts.',
  ],
  PolicyDocVariableUnterminated: [
    'MalformedPolicy',
    'unterminated policy variable starting at "{text}" (missing "}")',
    'A resource or condition value has ${ with no closing brace.',
  ],
  PolicyDocUnknownVariableHint: [
    'MalformedPolicy',
    'unknown policy variable ${{name}} (did you mean ${{hint}}?)',
    'A policy variable differs only in case from a known one.',
  ],
  PolicyDocUnknownVariable: [
    'MalformedPolicy',
    'unknown policy variable ${{name}} (see the policy variables of AWS IoT, e.g. ${iot:ClientId})',
    'A policy variable is not one AWS IoT defines.',
  ],
  PolicyDocConditionType: [
    'MalformedPolicy',
    'Condition must be an object of operators, got {type}',
    'Condition is not an object.',
  ],
  PolicyDocConditionOperator: [
    'MalformedPolicy',
    'unknown condition operator "{operator}" (e.g. StringEquals, StringLike, Bool, IpAddress)',
    'A condition operator is not an IAM operator.',
  ],
  PolicyDocNullIfExists: [
    'MalformedPolicy',
    'Null cannot be combined with IfExists',
    'The NullIfExists operator (which IAM does not have).',
  ],
  PolicyDocConditionBlock: [
    'MalformedPolicy',
    'must be an object of condition keys, got {type}',
    'A condition operator maps to something other than an object.',
  ],
  PolicyDocConditionEmpty: [
    'MalformedPolicy',
    'must name at least one condition key',
    'A condition operator maps to an empty object.',
  ],
  PolicyDocConditionKey: [
    'MalformedPolicy',
    '"{key}" is not a condition key (e.g. "iot:ClientId")',
    'A condition key is not service:Name.',
  ],
  PolicyDocConditionValues: [
    'MalformedPolicy',
    'must list at least one value',
    'A condition key maps to an empty array.',
  ],
  PolicyDocConditionBool: [
    'MalformedPolicy',
    '{operator} takes "true" or "false", got "{value}"',
    'A Bool condition value is not "true" or "false".',
  ],
  PolicyDocConditionNumber: [
    'MalformedPolicy',
    '"{value}" is not a number',
    'A Numeric condition value is not a number.',
  ],

  // ---- timeseries
  TsDuration: [
    'InvalidRequest',
    "{what} '{text}' is not a duration (e.g. 60000, 30s, 5m, 1h)",
    'A duration parameter (step, a relative from/to) does not parse.',
  ],
  TsDurationNotPositive: ['InvalidRequest', '{what} must be positive', 'A duration parameter is zero.'],
  TsInstant: [
    'InvalidRequest',
    "{what} '{text}' is not epoch ms, ISO-8601, now or -<duration>",
    'from or to does not parse as an instant.',
  ],
  TsPoints: [
    'InvalidRequest',
    'points must be an array of 1..100000 {thing, metric, ts, value}',
    'PutTimeseriesPoints without points, or with more than 100000.',
  ],
  TsPointKey: [
    'InvalidRequest',
    'points[{index:number}] needs thing and metric strings',
    'A written point lacks its thing or metric.',
  ],
  TsPointValue: [
    'InvalidRequest',
    'points[{index:number}].value must be a number or a string',
    'A written point has a value that is not a number or a string.',
  ],
  TsPointTime: [
    'InvalidRequest',
    'points[{index:number}].ts is not epoch ms or ISO-8601',
    'A written point has a timestamp that does not parse.',
  ],
  TsNoGroups: [
    'InvalidRequest',
    'thing groups are not available on this platform',
    'A time-series query names a group where the platform has no registry to resolve it.',
  ],
  TsRange: [
    'InvalidRequest',
    'from must be before to',
    'A time-series query whose range is empty or reversed.',
  ],
  TsFormat: [
    'InvalidRequest',
    "format must be 'json' or 'csv'",
    'A time-series query asks for another format.',
  ],
  TsLimit: ['InvalidRequest', 'limit must be 1..100000', 'A raw time-series query has a limit out of range.'],
  TsTooManyBuckets: [
    'InvalidRequest',
    'too many buckets: widen step or narrow the range',
    'A downsampled query would return more than 100000 buckets.',
  ],
  TsAggregate: [
    'InvalidRequest',
    'agg must be one of {aggregates:list}',
    'A downsampled query names an unknown aggregate.',
  ],
  TsWriterClosed: [
    'ServiceUnavailable',
    'time-series writer is closed',
    'A write arrives while the platform shuts down.',
  ],
  TsQueueFull: [
    'Throttling',
    'time-series write queue is full',
    'The time-series writer already holds timeseries.maxPending points.',
  ],

  // ---- rules: topic rules, actions, rule SQL
  RuleNotFound: [
    'ResourceNotFound',
    'Rule {ruleName} does not exist',
    'An operation names a topic rule that does not exist.',
  ],
  RuleNotAuthorized: [
    'Unauthorized',
    'Rule {ruleName} does not exist or is not authorized',
    'EnableTopicRule or DisableTopicRule names a rule that does not exist (AWS answers UnauthorizedException).',
  ],
  RuleAlreadyExists: [
    'ResourceAlreadyExists',
    'Rule {ruleName} already exists',
    'CreateTopicRule names an existing rule.',
  ],
  RuleTooManyActions: [
    'InvalidRequest',
    'A rule can have at most {max:number} actions',
    'A topic rule lists more actions than the limit (10).',
  ],
  RulePayloadWrapped: [
    'InvalidRequest',
    'The request body is the TopicRulePayload itself, without a topicRulePayload wrapper',
    'CreateTopicRule/ReplaceTopicRule body wraps the payload in a topicRulePayload member.',
  ],
  RuleNotEvaluable: [
    'InvalidRequest',
    'The rule cannot be evaluated on this payload: {reason}',
    'TestTopicRule: the rule SQL fails on the sample payload.',
  ],
  ActionShape: [
    'InvalidRequest',
    '{where} must be an object with exactly one action',
    'An action (or errorAction) is not an object.',
  ],
  ActionKeyCount: [
    'InvalidRequest',
    '{where} must have exactly one action key, got {count:number}',
    'An action object has zero or several keys.',
  ],
  ActionAwsOnly: [
    'InvalidRequest',
    "{where}: action '{action}' targets an AWS service and is not supported by Thingstead",
    'An action names an AWS-only target (lambda, s3, dynamoDB, ...).',
  ],
  ActionUnknown: [
    'InvalidRequest',
    "{where}: unknown action '{action}'",
    'An action key names no action we or AWS know.',
  ],
  ActionConfig: [
    'InvalidRequest',
    '{where}.{action}.{member}: {problem}',
    "An action's configuration breaks its schema (the first issue).",
  ],
  HttpActionUrl: ['InvalidRequest', "http.url '{url}' is not a URL", 'An HTTP action URL does not parse.'],
  HttpActionScheme: [
    'InvalidRequest',
    "http.url '{url}' must be http or https",
    'An HTTP action URL has another scheme.',
  ],
  HttpActionConfirmation: [
    'InvalidRequest',
    "http.url '{url}' must start with confirmationUrl '{confirmationUrl}'",
    'An HTTP action URL is outside its confirmed destination.',
  ],
  KafkaActionServers: [
    'InvalidRequest',
    "kafka.clientProperties must include 'bootstrap.servers'",
    'A Kafka action without bootstrap.servers.',
  ],
  TimeseriesActionMetric: [
    'InvalidRequest',
    "timeseries.metrics: '{metric}' is not an attribute path",
    'A time-series action metric is not a dotted attribute path.',
  ],
  SqlInvalidNumber: ['SqlParse', "Invalid number '{text}'", 'Rule SQL: a numeric literal does not parse.'],
  SqlUnterminatedString: [
    'SqlParse',
    'Unterminated string literal',
    'Rule SQL: a string literal is not closed.',
  ],
  SqlUnterminatedIdentifier: [
    'SqlParse',
    'Unterminated quoted identifier',
    'Rule SQL: a "quoted" identifier is not closed.',
  ],
  SqlUnexpectedCharacter: [
    'SqlParse',
    "Unexpected character '{char}'",
    'Rule SQL: a character that starts no token.',
  ],
  SqlTooDeep: [
    'SqlParse',
    'Expression nesting exceeds the maximum depth of {max:number}',
    'Rule SQL nests expressions deeper than 128 levels.',
  ],
  SqlExpected: [
    'SqlParse',
    'Expected {expected}, found {found}',
    'Rule SQL: the parser expected a keyword, operator or expression and found another token.',
  ],
  SqlCaseWithoutWhen: [
    'SqlParse',
    'CASE needs at least one WHEN, found {found}',
    'Rule SQL: a CASE with no WHEN.',
  ],
  SqlRequiresV2: [
    'SqlParse',
    '{feature} requires awsIotSqlVersion 2016-03-23',
    'Rule SQL uses a feature (nested query, CASE, ...) that the 2015-10-08 SQL version lacks.',
  ],
  SqlEmptyTopicFilter: ['SqlParse', 'Empty topic filter', "Rule SQL: FROM ''."],
  SqlTopicFilterHash: [
    'SqlParse',
    "Invalid topic filter '{filter}': '#' must be the last level",
    "Rule SQL: FROM topic filter with '#' before the last level.",
  ],
  SqlTopicFilterPlus: [
    'SqlParse',
    "Invalid topic filter '{filter}': '+' must occupy a whole level",
    "Rule SQL: FROM topic filter with '+' inside a level.",
  ],
  SqlUnknownVersion: [
    'SqlParse',
    "Unknown awsIotSqlVersion '{version}'",
    'awsIotSqlVersion is not 2015-10-08, 2016-03-23 or beta.',
  ],
  SqlAwsOnlyFunction: [
    'SqlParse',
    'Function {name}() needs AWS services and is not supported',
    'Rule SQL calls a function that needs AWS (aws_lambda, get_dynamodb, ...).',
  ],
  SqlUnknownFunction: [
    'SqlParse',
    'Unknown function {name}()',
    'Rule SQL calls a function that does not exist.',
  ],
  SqlFunctionRequiresV2: [
    'SqlParse',
    'Function {name}() requires awsIotSqlVersion 2016-03-23',
    'Rule SQL calls a function the 2015-10-08 SQL version lacks.',
  ],
  SqlFunctionArity: [
    'SqlParse',
    'Function {name}() takes {arity}, got {count:number}',
    'Rule SQL calls a function with the wrong number of arguments.',
  ],
  SqlCastRequiresV2: [
    'SqlParse',
    'cast to {type} requires awsIotSqlVersion 2016-03-23',
    'Rule SQL casts to a type the 2015-10-08 SQL version lacks.',
  ],
  SqlUnknownCastType: ['SqlParse', "Unknown type '{type}' in cast", 'Rule SQL casts to an unknown type.'],
  SqlTemplateUnterminated: [
    'SqlParse',
    "Unterminated ${...} in {field} '{source}'",
    'An action template (topic, url, key, ...) has a ${ with no closing brace.',
  ],
  SqlTemplateExpression: [
    'SqlParse',
    "Invalid expression in {field} '{source}': {detail}",
    'An action template has a ${...} expression that does not parse as rule SQL.',
  ],
});

/** The name of a message kind. */
export type ErrorKindName = keyof typeof E;
