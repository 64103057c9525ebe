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

  // ---- mqtt: the HTTP data plane (Publish, GetRetainedMessage, ListRetainedMessages) and device HTTPS
  DataPlaneTopic: [
    'InvalidRequest',
    'Invalid topic {topic}: {problem}',
    'Publish over HTTP (SigV4 data plane or device HTTPS) to a topic that is not a valid topic name or passes limits.maxTopicBytes / maxTopicLevels.',
  ],
  DataPlaneTopicReserved: [
    'Unauthorized',
    'Publishing to {topic} is not allowed: $aws/events/ topics and the answers of the shadow, jobs, streams and provisioning services are published by the broker only',
    "Publish over HTTP to a broker-owned topic (lifecycle and subscription events, or a reserved service's answer topic such as .../shadow/update/accepted).",
  ],
  DataPlanePayloadTooLarge: [
    'EntityTooLarge',
    'The payload exceeds the maximum size of {limit:number} bytes (limits.maxPayloadBytes).',
    'Publish over HTTP with a body larger than limits.maxPayloadBytes (AWS: 128 KB).',
  ],
  DataPlaneHeader: [
    'InvalidRequest',
    'The {header} header is not valid: {reason}',
    'Publish over HTTP with an x-amz-mqtt5-user-properties (base64 of a JSON array of single-pair objects) or x-amz-mqtt5-correlation-data (base64) header that does not decode.',
  ],
  DataPlanePayloadNotUtf8: [
    'InvalidRequest',
    'The payload is not valid UTF-8, but the payload format indicator is UTF8_DATA.',
    'Publish over HTTP with x-amz-mqtt5-payload-format-indicator UTF8_DATA and a body that is not UTF-8.',
  ],
  RetainedMessageNotFound: [
    'ResourceNotFound',
    'No retained message exists for topic {topic}',
    'GetRetainedMessage for a topic without a retained message.',
  ],
  DataPlaneNextToken: [
    'InvalidRequest',
    'The nextToken is not valid: {token}',
    'ListRetainedMessages with a nextToken it did not hand out.',
  ],
  DeviceHttpsNoRoute: [
    'MethodNotAllowed',
    '{method} {path} is not served on this port: devices may POST /topics/<topic> (and the routes other contexts add)',
    'A device HTTPS request that no route serves.',
  ],
  DeviceHttpsUnauthenticated: [
    'Unauthorized',
    'Not authenticated: {reason}',
    'A device HTTPS request without a registered, ACTIVE client certificate (the reason names what is wrong).',
  ],
  DeviceHttpsForbidden: [
    'Forbidden',
    'Not authorized to publish to {topic}',
    "A device HTTPS publish its certificate's policies do not allow (iot:Publish, and iot:RetainPublish with retain).",
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

  // ---- jobs: jobs, job executions, job templates (control plane, jobs data plane and MQTT rejections)
  JobNotFound: [
    'ResourceNotFound',
    'Job {jobId} does not exist',
    'A job operation names a job that does not exist.',
  ],
  JobAlreadyExists: [
    'ResourceAlreadyExists',
    'Job {jobId} already exists',
    'CreateJob with the id of an existing job (deleted jobs free their id).',
  ],
  JobExecutionNotFound: [
    'ResourceNotFound',
    'Job execution of job {jobId} on thing {thingName} does not exist',
    'An execution operation names a job and thing (and execution number) with no execution.',
  ],
  JobTemplateNotFound: [
    'ResourceNotFound',
    'Job template {jobTemplateId} does not exist',
    'A template operation, or CreateJob with jobTemplateArn, names a template that does not exist.',
  ],
  JobTemplateAlreadyExists: [
    'ResourceAlreadyExists',
    'Job template {jobTemplateId} already exists',
    'CreateJobTemplate with the id of an existing template.',
  ],
  JobTargetInvalid: [
    'InvalidRequest',
    "Target '{target}' is not a thing or thing group ARN of this account",
    'CreateJob targets must be arn:aws:iot:{region}:{account}:thing/{name} or thinggroup/{name}.',
  ],
  JobTargetNotFound: [
    'ResourceNotFound',
    'Target {target} does not exist',
    'CreateJob names a thing or thing group that does not exist.',
  ],
  JobDocumentMissing: [
    'InvalidRequest',
    'One of document, documentSource or jobTemplateArn is required',
    'CreateJob (or CreateJobTemplate) without a document, a document source or a template to take it from.',
  ],
  JobDocumentBoth: [
    'InvalidRequest',
    'document and documentSource cannot both be given',
    'CreateJob or CreateJobTemplate with an inline document and a document source.',
  ],
  JobDocumentTooLarge: [
    'InvalidRequest',
    'The job document is {size:number} characters; the limit is {limit:number}',
    'A job document (inline or fetched) over 32768 characters (reference §11).',
  ],
  JobDocumentNotJson: [
    'InvalidRequest',
    'The job document is not a JSON object',
    'A job document (inline or fetched) that does not parse as a JSON object.',
  ],
  JobDocumentSource: [
    'InvalidRequest',
    'documentSource {url} could not be read: {reason}',
    'The documentSource URL is not http(s), or fetching it failed, timed out or answered non-2xx.',
  ],
  JobDocumentParameter: [
    'InvalidRequest',
    'The job document uses ${aws:iot:parameter:{name}}, which documentParameters does not give',
    'A placeholder in the job document has no value in documentParameters.',
  ],
  JobTerminal: [
    'InvalidRequest',
    'Job {jobId} is {status}; it can no longer be {what}',
    'UpdateJob or CancelJob on a job that is COMPLETED, CANCELED or being deleted.',
  ],
  JobNotTerminal: [
    'InvalidStateTransition',
    'Job {jobId} is {status}; cancel it first or delete it with force=true',
    'DeleteJob without force on a job that is not COMPLETED or CANCELED.',
  ],
  JobWriteConflict: [
    'ConflictingResourceUpdate',
    'Job {jobId} was changed by another request; retry',
    'A job write lost the race with another writer too many times in a row.',
  ],
  JobScheduling: [
    'InvalidRequest',
    "schedulingConfig.{member} '{value}' is not a date-time (yyyy-MM-ddTHH:mm, UTC) or is out of order",
    'schedulingConfig times that do not parse, or an endTime not after the startTime.',
  ],
  JobTemplateSource: [
    'InvalidRequest',
    'Give either jobArn or document/documentSource',
    'CreateJobTemplate with both a job to copy and a document, or with neither.',
  ],
  JobExecutionTransition: [
    'InvalidStateTransition',
    'Job execution of job {jobId} on thing {thingName} cannot go from {from} to {to}',
    'An update or cancel asks for a state the execution cannot move to (e.g. from a terminal state).',
  ],
  JobExecutionForceNeeded: [
    'InvalidStateTransition',
    'Job execution of job {jobId} on thing {thingName} is {status}; use force=true',
    'CancelJobExecution or DeleteJobExecution on an IN_PROGRESS execution (or a live one) without force.',
  ],
  JobExecutionVersion: [
    'Conflict',
    'expectedVersion {expected:number} does not match the current versionNumber {actual:number}',
    'An execution update whose expectedVersion is not the current versionNumber (MQTT: VersionMismatch).',
  ],
  JobExecutionVersionConflict: [
    'VersionConflict',
    "expectedVersion {expected:number} is not the execution's versionNumber {actual:number}",
    "CancelJobExecution whose expectedVersion is not the execution's current versionNumber.",
  ],
  JobStatusDetails: [
    'InvalidRequest',
    'statusDetails {problem}: keys 1-128 characters [a-zA-Z0-9:_-], values 1-1024 characters',
    'statusDetails with a bad key or value (reference §5), or more than 10 entries.',
  ],
  JobsRequestJson: [
    'InvalidRequest',
    'The request payload is not a JSON object',
    'A jobs MQTT request whose payload does not parse as a JSON object (MQTT: InvalidJson).',
  ],
  JobsRequestInvalid: [
    'InvalidRequest',
    '{problem}',
    'A jobs MQTT request with a member of the wrong type or out of range (MQTT: InvalidRequest).',
  ],
  JobAssociateInvalid: [
    'InvalidRequest',
    'Targets can be associated only with an IN_PROGRESS CONTINUOUS job; job {jobId} is {status} and {targetSelection}',
    "AssociateTargetsWithJob on a SNAPSHOT job or on a job that is not IN_PROGRESS (AWS's criteria).",
  ],
  JobTargetLimit: [
    'LimitExceeded',
    'Job {jobId} would have {count:number} targets; AssociateTargetsWithJob allows at most {limit:number}',
    "AssociateTargetsWithJob that would take a job past AWS's 100 targets (410; the JS SDK retries it as throttling).",
  ],
  JobExecutionNotStartable: [
    'InvalidStateTransition',
    'Job {jobId} is {status}: its execution on thing {thingName} can no longer start',
    'A device starts or reports on a QUEUED execution of a job that is no longer IN_PROGRESS (canceled, e.g. by abortConfig).',
  ],
  JobMaintenanceWindow: [
    'InvalidRequest',
    "schedulingConfig.maintenanceWindows[{index:number}].startTime '{value}' is not an AWS cron expression: {problem}",
    'A maintenance window whose startTime is not cron(minutes hours day-of-month month day-of-week year) in UTC.',
  ],

  // ---- registry: things, thing types, thing groups, billing groups, fleet index (AWS's wording where AWS has one)
  ThingNotFound: [
    'ResourceNotFound',
    'Thing {thingName} cannot be found.',
    'The thing named in the request does not exist.',
  ],
  ThingTypeNotFound: [
    'ResourceNotFound',
    'Thing type {thingTypeName} cannot be found.',
    'The thing type named in the request does not exist.',
  ],
  ThingGroupNotFound: [
    'ResourceNotFound',
    'Thing group {thingGroupName} cannot be found.',
    'The thing group named in the request (or as a parent group) does not exist.',
  ],
  BillingGroupNotFound: [
    'ResourceNotFound',
    'Billing group {billingGroupName} cannot be found.',
    'The billing group named in the request does not exist.',
  ],
  IndexNotFound: [
    'ResourceNotFound',
    'Index {indexName} cannot be found.',
    'A fleet-indexing call names an index other than the one thing index.',
  ],
  SearchIndexNotFound: [
    'ResourceNotFound',
    'Index {indexName} cannot be found; the thing index is {thingIndex}.',
    'SearchIndex names an index other than the one thing index (AWS_Things).',
  ],
  ArnWrongType: [
    'InvalidRequest',
    'ARN {arn} is not a {type} ARN.',
    'A member that takes a name or an ARN got the ARN of another resource type.',
  ],
  NextTokenInvalid: [
    'InvalidRequest',
    "The nextToken '{token}' is invalid.",
    'A registry listing got a nextToken it did not hand out (the first 64 characters are shown).',
  ],
  ThingTarget: [
    'InvalidRequest',
    'Specify thingName or thingArn.',
    'A group or billing group membership call names no thing.',
  ],
  ThingAttributesLimit: [
    'InvalidRequest',
    'Thing {thingName} would have {count:number} attributes; the maximum is {max:number}.',
    'CreateThing or UpdateThing would leave a thing with more attributes than the limit.',
  ],
  ThingConflict: [
    'ResourceAlreadyExists',
    'Thing {thingName} already exists with different tags or attributes.',
    'CreateThing names an existing thing but with another type, attributes or billing group.',
  ],
  ThingVersionMismatch: [
    'VersionConflict',
    'The version for thing {thingName} does not match the expected version: expected {expected:number}, current {current:number}.',
    'UpdateThing or DeleteThing carries an expectedVersion that is not the current one.',
  ],
  ThingChanged: [
    'VersionConflict',
    'Thing {thingName} was changed concurrently; read it again and retry.',
    'UpdateThing or DeleteThing lost a race with another writer of the same thing.',
  ],
  ThingChangedRetry: [
    'VersionConflict',
    'Thing {thingName} was changed concurrently; retry.',
    'AddThingToBillingGroup lost five races in a row with other writers of the thing.',
  ],
  ThingHasPrincipals: [
    'InvalidRequest',
    'Cannot delete thing {thingName} because it has principals attached; detach them first (DetachThingPrincipal).',
    'DeleteThing on a thing that still has certificates or other principals attached.',
  ],
  ThingTypeOrRemove: [
    'InvalidRequest',
    'Specify either thingTypeName or removeThingType, not both.',
    'UpdateThing sets a thing type and removes it in the same call.',
  ],
  ListThingsAttributeValue: [
    'InvalidRequest',
    'attributeValue requires attributeName.',
    'ListThings filters on an attribute value without naming the attribute.',
  ],
  ListThingsPrefix: [
    'InvalidRequest',
    'usePrefixAttributeValue requires attributeName and attributeValue.',
    'ListThings asks for a prefix match without an attribute value.',
  ],
  PrincipalAttachedElsewhere: [
    'InvalidRequest',
    'Principal {principal} is already attached to thing {thingName}; an EXCLUSIVE_THING principal can be attached to only one thing.',
    'AttachThingPrincipal with EXCLUSIVE_THING for a principal already attached to another thing.',
  ],
  PrincipalAttachedExclusively: [
    'InvalidRequest',
    'Principal {principal} is already attached to thing {thingName} exclusively; an EXCLUSIVE_THING principal can be attached to only one thing.',
    'AttachThingPrincipal for a principal that another thing holds as EXCLUSIVE_THING.',
  ],
  ThingTypeDeprecated: [
    'InvalidRequest',
    'Can not create or update a thing with deprecated thing type {thingTypeName}; undeprecate it with DeprecateThingType (undoDeprecate) or pick another type.',
    'CreateThing or UpdateThing names a deprecated thing type.',
  ],
  ThingTypeConflict: [
    'ResourceAlreadyExists',
    'Thing type {thingTypeName} already exists with different properties.',
    'CreateThingType names an existing thing type but with other properties.',
  ],
  ThingTypeAlreadyExists: [
    'ResourceAlreadyExists',
    'Thing type {thingTypeName} already exists.',
    'CreateThingType lost a race with another creation of the same thing type.',
  ],
  ThingTypeNotDeprecated: [
    'InvalidRequest',
    'Thing type {thingTypeName} must be deprecated before it can be deleted (DeprecateThingType).',
    'DeleteThingType on a thing type that is not deprecated.',
  ],
  ThingTypeInUse: [
    'InvalidRequest',
    'Thing type {thingTypeName} is still used by {count:number} thing(s); change or remove their type (UpdateThing removeThingType) first.',
    'DeleteThingType on a thing type that things still have.',
  ],
  ThingGroupTarget: [
    'InvalidRequest',
    'Specify thingGroupName or thingGroupArn.',
    'AddThingToThingGroup or RemoveThingFromThingGroup names no thing group.',
  ],
  ThingGroupAttributesLimit: [
    'InvalidRequest',
    'Thing group {thingGroupName} would have {count:number} attributes; the maximum is {max:number}.',
    'CreateThingGroup or UpdateThingGroup would leave a group with more attributes than the limit.',
  ],
  ThingGroupConflict: [
    'ResourceAlreadyExists',
    'Thing group {thingGroupName} already exists with a different configuration.',
    'CreateThingGroup names an existing group but with another parent, properties or query.',
  ],
  ThingGroupAlreadyExists: [
    'ResourceAlreadyExists',
    'Thing group {thingGroupName} already exists.',
    'CreateThingGroup lost a race with another creation of the same group.',
  ],
  DynamicGroupAsParent: [
    'InvalidRequest',
    'Dynamic thing group {thingGroupName} cannot be a parent group.',
    'CreateThingGroup names a dynamic thing group as the parent.',
  ],
  ThingGroupDepth: [
    'InvalidRequest',
    'Thing group {thingGroupName} would be at depth {depth:number}; a thing group hierarchy can be at most {max:number} levels deep.',
    'CreateThingGroup under a parent at the deepest level the hierarchy allows.',
  ],
  ThingGroupChildLimit: [
    'LimitExceeded',
    'Thing group {thingGroupName} already has {max:number} child groups, the maximum.',
    'CreateThingGroup under a parent that has the most child groups allowed.',
  ],
  StaticGroupUpdate: [
    'InvalidRequest',
    'Thing group {thingGroupName} is a static group; use UpdateThingGroup.',
    'UpdateDynamicThingGroup names a static thing group.',
  ],
  StaticGroupDelete: [
    'InvalidRequest',
    'Thing group {thingGroupName} is a static group; use DeleteThingGroup.',
    'DeleteDynamicThingGroup names a static thing group.',
  ],
  ThingGroupVersionMismatch: [
    'VersionConflict',
    'The version for thing group {thingGroupName} does not match the expected version: expected {expected:number}, current {current:number}.',
    'UpdateThingGroup or DeleteThingGroup carries an expectedVersion that is not the current one.',
  ],
  ThingGroupChanged: [
    'VersionConflict',
    'Thing group {thingGroupName} was changed concurrently; read it again and retry.',
    'UpdateThingGroup lost a race with another writer of the same group.',
  ],
  ThingGroupHasChildren: [
    'InvalidRequest',
    'Cannot delete thing group {thingGroupName} while it has child groups; delete or move them first.',
    'DeleteThingGroup on a group that still has child groups.',
  ],
  DynamicGroupAdd: [
    'InvalidRequest',
    'Cannot add things to dynamic thing group {thingGroupName}: its query decides membership.',
    'AddThingToThingGroup (or UpdateThingGroupsForThing) names a dynamic thing group.',
  ],
  DynamicGroupRemove: [
    'InvalidRequest',
    'Cannot remove things from dynamic thing group {thingGroupName}: its query decides membership.',
    'RemoveThingFromThingGroup (or UpdateThingGroupsForThing) names a dynamic thing group.',
  ],
  ThingGroupsPerThingLimit: [
    'LimitExceeded',
    'Thing {thingName} is already in {count:number} thing groups, the maximum.',
    'Adding a thing to one more static group than a thing may belong to.',
  ],
  ThingNameRequired: [
    'InvalidRequest',
    'thingName is required.',
    'UpdateThingGroupsForThing names no thing.',
  ],
  BillingGroupConflict: [
    'ResourceAlreadyExists',
    'Billing group {billingGroupName} already exists with a different configuration.',
    'CreateBillingGroup names an existing billing group but with another description.',
  ],
  BillingGroupAlreadyExists: [
    'ResourceAlreadyExists',
    'Billing group {billingGroupName} already exists.',
    'CreateBillingGroup lost a race with another creation of the same billing group.',
  ],
  BillingGroupVersionMismatch: [
    'VersionConflict',
    'The version for billing group {billingGroupName} does not match the expected version: expected {expected:number}, current {current:number}.',
    'UpdateBillingGroup or DeleteBillingGroup carries an expectedVersion that is not the current one.',
  ],
  BillingGroupChanged: [
    'VersionConflict',
    'Billing group {billingGroupName} was changed concurrently.',
    'UpdateBillingGroup lost a race with another writer of the same billing group.',
  ],
  BillingGroupTarget: [
    'InvalidRequest',
    'Specify billingGroupName or billingGroupArn.',
    'AddThingToBillingGroup or RemoveThingFromBillingGroup names no billing group.',
  ],
  EndpointType: [
    'InvalidRequest',
    'Endpoint type {endpointType} is not valid; use one of {endpointTypes:list}.',
    'DescribeEndpoint asks for an endpoint type Thingstead does not serve.',
  ],
  QueryEmpty: [
    'InvalidQuery',
    'Syntax error in query string: the query string is empty',
    'A fleet-indexing query string (SearchIndex, dynamic group) is empty or blank.',
  ],
  QueryUnterminatedQuote: [
    'InvalidQuery',
    'Syntax error in query string: unterminated quote at position {pos:number}',
    'A fleet-indexing query string has a " with no closing quote.',
  ],
  QueryExpectedTerm: [
    'InvalidQuery',
    'Syntax error in query string: expected a term at position {pos:number}',
    'A fleet-indexing query string has an operator or parenthesis where a term belongs.',
  ],
  QueryExpectedTo: [
    'InvalidQuery',
    'Syntax error in query string: expected TO in range at position {pos:number}',
    'A fleet-indexing range ([a TO b]) lacks its TO.',
  ],
  QueryExpectedRangeEnd: [
    'InvalidQuery',
    'Syntax error in query string: expected ] or } at position {pos:number}',
    'A fleet-indexing range is not closed.',
  ],
  QueryExpectedValue: [
    'InvalidQuery',
    'Syntax error in query string: expected a value for {field} at position {pos:number}',
    'A fleet-indexing field:value term has no value.',
  ],
  QueryExpectedComparand: [
    'InvalidQuery',
    'Syntax error in query string: expected a value after the comparison at position {pos:number}',
    'A fleet-indexing comparison (field>value, field<=value, ...) has no value.',
  ],
  QueryExpectedParen: [
    'InvalidQuery',
    'Syntax error in query string: expected ) at position {pos:number}',
    'A fleet-indexing query string opens a parenthesis it does not close.',
  ],
  QueryUnexpected: [
    'InvalidQuery',
    "Syntax error in query string: unexpected '{char}' at position {pos:number}",
    'A fleet-indexing query string has text left after a complete query.',
  ],
  QueryUnknownField: [
    'InvalidQuery',
    "Unknown field '{field}' in query string.",
    'A fleet-indexing query names a field that is neither a thing field, an attribute nor a provider field.',
  ],

  // ---- shadow: device shadows over HTTP (bodies carry AWS's numeric `code` too; texts from reference §8.2)
  ShadowInvalid: [
    'InvalidRequest',
    '{invalid}',
    'A shadow request AWS answers with 400 (invalid JSON, node, version, clientToken, nesting).',
  ],
  ShadowUnauthorized: ['Unauthorized', 'Unauthorized', 'A shadow request without valid credentials (401).'],
  ShadowForbidden: ['Forbidden', 'Forbidden', 'The caller may not read or change this shadow (403).'],
  ShadowNotFound: ['ResourceNotFound', '{notFound}', 'No shadow with that name exists for the thing (404).'],
  ShadowConflict: [
    'Conflict',
    'Version conflict',
    'The update named a version that is not the current one (409 Version conflict).',
  ],
  ShadowTooLarge: [
    'EntityTooLarge',
    'The payload exceeds the maximum size allowed',
    "The shadow's state would exceed `shadow.maxStateBytes` (413).",
  ],
  ShadowEncoding: [
    'UnsupportedDocumentEncoding',
    'Unsupported documented encoding; supported encoding is UTF-8',
    'The document is not UTF-8 (415).',
  ],
  ShadowThrottled: [
    'DataPlaneThrottling',
    'Too Many Requests',
    'Too many shadow requests for the thing or connection (429).',
  ],
  ShadowInternal: [
    'InternalFailure',
    'Internal service failure',
    'The shadow store failed (500); the request changed nothing.',
  ],

  // ---- identity: certificates, CA certificates, access keys
  CertificateNotFound: [
    'ResourceNotFound',
    'Certificate {certificateId} not found',
    'The certificate named in the request is not registered.',
  ],
  CertificateAlreadyExists: [
    'ResourceAlreadyExists',
    'Certificate {certificateId} is already registered',
    'RegisterCertificate (or CreateCertificateFromCsr) for a certificate that is already registered.',
  ],
  CertificateIdFormat: [
    'InvalidRequest',
    '{what} must be 64 hexadecimal characters',
    'A certificate id in the request is not 64 hex digits (an optional 0x allowed).',
  ],
  CertificateStatusValue: [
    'InvalidRequest',
    '{what} must be one of {allowed:list}; got {value}',
    'A certificate status member (newStatus, status) is not one the operation accepts (the value is shown as JSON).',
  ],
  CertificateRevoked: [
    'CertificateState',
    'Certificate {certificateId} is revoked; its status cannot change',
    'UpdateCertificate on a revoked certificate.',
  ],
  CertificateActive: [
    'CertificateState',
    'Certificate {certificateId} is ACTIVE; deactivate it (UpdateCertificate newStatus=INACTIVE) before deleting it',
    'DeleteCertificate on an ACTIVE certificate.',
  ],
  CertificateAttachedThings: [
    'DeleteConflict',
    'Certificate {certificateId} is attached to thing(s) {things:list}; detach it first (DetachThingPrincipal)',
    'DeleteCertificate on a certificate that things still have as a principal.',
  ],
  CertificateAttachedPolicies: [
    'DeleteConflict',
    'Certificate {certificateId} has policies attached ({policies:list}); detach them or use forceDelete',
    'DeleteCertificate without forceDelete on a certificate with policies attached.',
  ],
  CertificateNotPem: [
    'CertificateValidation',
    '{what} is not a PEM certificate',
    'A certificate member (certificatePem, caCertificate, ...) holds no PEM certificate.',
  ],
  CertificateUnparsable: [
    'CertificateValidation',
    '{what} cannot be parsed: {reason}',
    'A certificate member holds a PEM certificate that does not parse as X.509 (the parser says why).',
  ],
  CertificateNotSignedByCa: [
    'CertificateValidation',
    'certificatePem is not signed by caCertificatePem',
    'RegisterCertificate with a caCertificatePem that did not sign certificatePem.',
  ],
  CertificateNoRegisteredCa: [
    'CertificateValidation',
    'certificatePem is not signed by a registered CA; register its CA or use RegisterCertificateWithoutCA',
    'RegisterCertificate without caCertificatePem for a certificate no registered CA signed.',
  ],
  CaRequiredNotRegistered: [
    'ResourceNotFound',
    'CA certificate {caCertificateId} is not registered (RegisterCACertificate first)',
    'RegisterCertificate with a caCertificatePem that is not a registered CA certificate.',
  ],
  CsrRequired: [
    'InvalidRequest',
    'certificateSigningRequest is required (a PEM CSR, at most 4096 characters)',
    'CreateCertificateFromCsr without a certificate signing request.',
  ],
  CsrNotPem: [
    'InvalidRequest',
    'certificateSigningRequest is not a PEM certificate request',
    'CreateCertificateFromCsr with a signing request that is not PEM.',
  ],
  CsrUnparsable: [
    'InvalidRequest',
    'certificateSigningRequest cannot be parsed: {reason}',
    'CreateCertificateFromCsr with a PEM signing request that does not parse (the parser says why).',
  ],
  CsrSignature: [
    'InvalidRequest',
    'certificateSigningRequest signature does not verify',
    'CreateCertificateFromCsr with a signing request whose self-signature is wrong.',
  ],
  PlatformCaKeyMissing: [
    'InvalidRequest',
    'the platform CA key is not available (an operator-supplied CA file was configured without its key)',
    'Issuing a certificate (CreateKeysAndCertificate, CreateCertificateFromCsr) when the platform CA has no key.',
  ],
  CaNotFound: [
    'ResourceNotFound',
    'CA certificate {caCertificateId} not found',
    'The CA certificate named in the request is not registered.',
  ],
  CaAlreadyExists: [
    'ResourceAlreadyExists',
    'CA certificate {caCertificateId} is already registered',
    'RegisterCACertificate for a CA certificate that is already registered.',
  ],
  CaNotCa: [
    'CertificateValidation',
    'caCertificate is not a CA certificate (basicConstraints cA is false)',
    'RegisterCACertificate with a certificate that is not a CA.',
  ],
  CaCertificateMode: [
    'InvalidRequest',
    'certificateMode must be DEFAULT or SNI_ONLY',
    'RegisterCACertificate with another certificateMode.',
  ],
  RegistrationCodeMissing: [
    'RegistrationCodeValidation',
    'no registration code exists: call GetRegistrationCode and sign a verification certificate with it',
    'RegisterCACertificate (DEFAULT mode) before any registration code was made.',
  ],
  VerificationRequired: [
    'InvalidRequest',
    'verificationCertificate is required (its common name must be the registration code)',
    'RegisterCACertificate in DEFAULT mode without a verification certificate.',
  ],
  VerificationNotSigned: [
    'CertificateValidation',
    'verificationCertificate is not signed by the CA certificate being registered',
    'RegisterCACertificate with a verification certificate the CA did not sign.',
  ],
  VerificationCommonName: [
    'CertificateValidation',
    'the common name of verificationCertificate must be the registration code (see GetRegistrationCode)',
    "RegisterCACertificate with a verification certificate whose CN is not the account's registration code.",
  ],
  PlatformCaImmutable: [
    'InvalidRequest',
    'the platform CA cannot be changed through the API',
    'UpdateCACertificate names the platform CA.',
  ],
  PlatformCaUndeletable: [
    'InvalidRequest',
    'the platform CA cannot be deleted',
    'DeleteCACertificate names the platform CA.',
  ],
  CaActive: [
    'CertificateState',
    'CA certificate {caCertificateId} is ACTIVE; deactivate it before deleting it',
    'DeleteCACertificate on an ACTIVE CA certificate.',
  ],
  CaHasCertificates: [
    'DeleteConflict',
    'CA certificate {caCertificateId} still has {count:number} registered certificate(s)',
    'DeleteCACertificate on a CA that registered certificates still name.',
  ],
  AccessKeyName: [
    'InvalidRequest',
    "Key name '{name}' is invalid: use 1-64 characters from a-z A-Z 0-9 _ . @ -.",
    'Creating an access key with a name outside the allowed characters or length.',
  ],
  AccessKeyRole: [
    'InvalidRequest',
    "Role '{role}' is invalid: use admin or read-only.",
    'Creating an access key with a role other than admin or read-only.',
  ],
  AccessKeyAlreadyExists: [
    'ResourceAlreadyExists',
    "An access key named '{name}' already exists.",
    'Creating an access key with the name of an existing one.',
  ],
  MasterKeyInvalid: [
    'InternalFailure',
    '{file} is not a 32-byte hex key; restore it from backup.',
    'The master key file (master.key in the data directory) exists but does not hold a 32-byte hex key.',
  ],
  AccessKeyUndecryptable: [
    'InternalFailure',
    'cannot decrypt access key {accessKeyId}: {keyFile} is not the key that encrypted it (copy master.key from the data directory of the first node).',
    "A stored access key's secret does not decrypt with this node's master key (nodes with different master.key files).",
  ],

  // ---- tags: resource tags (TagResource, UntagResource, ListTagsForResource, tags given at create time)
  TagKeyReserved: [
    'InvalidRequest',
    "Tag keys beginning with 'aws:' are reserved for AWS use: {key}",
    'A tag key (or a key to remove) starts with the reserved aws: prefix, in any case.',
  ],
  TagKeyDuplicate: [
    'InvalidRequest',
    'Tag key {key} appears more than once in the request.',
    'One request lists the same tag key twice.',
  ],
  TagLimit: [
    'InvalidRequest',
    'A resource can have at most {max:number} tags.',
    'The tags given, added to those the resource has, would exceed the per-resource limit (50).',
  ],
  TagArnInvalid: [
    'InvalidRequest',
    '{resourceArn} is not a valid AWS IoT resource ARN (arn:aws:iot:region:account:type/name).',
    'A tagging operation names something that is not an AWS IoT resource ARN.',
  ],
  TagResourceType: [
    'InvalidRequest',
    'Resources of type {type} cannot be tagged here; taggable types: {types:list}.',
    'A tagging operation names an ARN of a resource type Thingstead does not tag (things use attributes).',
  ],
  TagResourceNotFound: [
    'ResourceNotFound',
    'The resource {resourceArn} does not exist.',
    "A tagging operation names a resource that does not exist (or another region's or account's ARN).",
  ],
  TaggingHeaderInvalid: [
    'InvalidRequest',
    "The x-amz-tagging header '{header}' does not hold valid tags: key=value pairs joined with &, keys of 1 to 128 characters, values of at most 256.",
    "CreateTopicRule's tags (the x-amz-tagging header, URL query format) break the tag constraints.",
  ],

  // ---- registry: fleet indexing configuration (UpdateIndexingConfiguration)
  IndexingModeConflict: [
    'InvalidRequest',
    '{member} {value} cannot be used with thingIndexingMode {mode}.',
    'UpdateIndexingConfiguration asks for connectivity, named-shadow or Device Defender indexing that the thing indexing mode does not allow.',
  ],

  // ---- rules: topic rule destinations (HTTP URL destinations and their confirmation)
  DestinationNotFound: [
    'InvalidRequest',
    'Topic rule destination {arn} does not exist.',
    'A destination operation names an ARN with no destination (the model lists no ResourceNotFoundException here).',
  ],
  DestinationAlreadyExists: [
    'ResourceAlreadyExists',
    'A topic rule destination for {confirmationUrl} already exists.',
    'CreateTopicRuleDestination with the confirmationUrl of an existing destination.',
  ],
  DestinationKind: [
    'InvalidRequest',
    'destinationConfiguration must hold httpUrlConfiguration: Thingstead has HTTP URL destinations only.',
    'CreateTopicRuleDestination without httpUrlConfiguration (VPC and InfluxDB destinations are AWS-only).',
  ],
  DestinationUrl: [
    'InvalidRequest',
    "confirmationUrl '{url}' must be an absolute http:// or https:// URL.",
    'CreateTopicRuleDestination with a confirmation URL that is not an absolute HTTP(S) URL.',
  ],
  DestinationStatusChange: [
    'InvalidRequest',
    'A topic rule destination in status {from} cannot be set to {to}.',
    'UpdateTopicRuleDestination asks for a transition AWS does not allow (ENABLED only from DISABLED, DISABLED only from ENABLED, ERROR and DELETING never).',
  ],
  DestinationConflict: [
    'ConflictingResourceUpdate',
    'Topic rule destination {arn} was changed by another request; retry.',
    'Two requests changed the same destination at once; the later one lost (ConflictingResourceUpdateException).',
  ],
  DestinationTokenInvalid: [
    'InvalidRequest',
    'The confirmation token is not valid: it is unknown, or a newer confirmation replaced it.',
    'ConfirmTopicRuleDestination with a token no destination is waiting for.',
  ],
  HttpDestinationNotEnabled: [
    'InvalidRequest',
    'POST {url} refused: topic rule destination {arn} ({confirmationUrl}) is {status}, not ENABLED.',
    'An http action would send to a URL covered by a destination that is not ENABLED (confirm or enable it).',
  ],
  HttpDestinationRequired: [
    'InvalidRequest',
    'POST {url} refused: no ENABLED topic rule destination covers it and rules.requireHttpDestinations is on.',
    'With rules.requireHttpDestinations on, an http action sends only to URLs an ENABLED destination covers.',
  ],

  // ---- ota: firmware files, signed download URLs, MQTT file-delivery streams
  OtaFileNotFound: [
    'ResourceNotFound',
    'Firmware file {file} is not stored.',
    'A download, a stream file or an OTA file operation names a file (SHA-256 or upload name) that was never uploaded or was deleted.',
  ],
  OtaFileTooLarge: [
    'EntityTooLarge',
    'The firmware file is {size:number} bytes or more; ota.maxFileBytes allows {limit:number}.',
    'An upload is larger than ota.maxFileBytes (checked on the declared size and while the bytes arrive).',
  ],
  OtaUploadDigest: [
    'InvalidRequest',
    'The uploaded bytes have SHA-256 {actual}, not the {declared} the upload was signed for.',
    'An upload whose body does not hash to the sha256 its signed URL declares (corrupted or altered on the way).',
  ],
  OtaUploadInvalid: [
    'InvalidRequest',
    'Firmware upload refused: {problem}.',
    'An upload request without the parameters it needs (sha256, size) or whose body does not match them.',
  ],
  OtaUrlRefused: [
    'Forbidden',
    'Download refused: {reason}.',
    'A firmware download without a valid signed URL: unsigned, expired, or altered (path or expiry changed, or signed by another key).',
  ],
  StreamNotFound: [
    'ResourceNotFound',
    'Stream {streamId} does not exist',
    'DescribeStream, UpdateStream or DeleteStream names a stream that does not exist.',
  ],
  StreamAlreadyExists: [
    'ResourceAlreadyExists',
    'Stream {streamId} already exists',
    'CreateStream with the id of an existing stream.',
  ],
  StreamFileUnknown: [
    'InvalidRequest',
    "Stream file {fileId:number} points at s3://{bucket}/{key}, which is not a stored firmware file (the key's last segment must be the SHA-256 or upload name of a file given to thingstead ota upload).",
    'CreateStream or UpdateStream names a file Thingstead does not hold (it has no S3: files are uploaded to it).',
  ],
  StreamFileDuplicate: [
    'InvalidRequest',
    'Stream file id {fileId:number} is given more than once.',
    'CreateStream or UpdateStream lists two files with the same fileId.',
  ],
  StreamWriteConflict: [
    'ConflictingResourceUpdate',
    'Stream {streamId} was changed by other requests meanwhile; retry',
    'UpdateStream lost five optimistic-write races in a row against other updates of the same stream.',
  ],
  // ---- console: the web console's sign-in, session and own endpoints (src/console)
  ConsoleSignInFailed: [
    'Unauthorized',
    'Sign-in failed: unknown access key id or wrong secret access key.',
    'A console sign-in names an access key that does not exist, or the secret does not match.',
  ],
  ConsoleSignInThrottled: [
    'Throttling',
    'Too many failed sign-ins from {remote}; wait {seconds:number} s and try again.',
    'A client address failed console sign-in too often within a minute.',
  ],
  ConsoleSessionExpired: [
    'Unauthorized',
    'Your console session has expired or was signed out; sign in again.',
    'A request carries a console session cookie that is unknown, expired, or whose access key was deleted.',
  ],
  ConsoleCsrfToken: [
    'Forbidden',
    'The request lacks the console CSRF token (header x-thingstead-csrf); reload the console page.',
    'A console request authenticated by its session cookie carries no CSRF token, or a wrong one.',
  ],
  ConsoleCrossOrigin: [
    'Forbidden',
    'Cross-origin request refused: Origin {origin} is not this console ({host}).',
    'A console request comes from a page of another origin (its Origin header names another host).',
  ],
  ConsoleServiceHeader: [
    'InvalidRequest',
    "x-thingstead-service must be one of iot, iotdata, iot-jobs-data (got '{service}').",
    'A console API call authenticated by its session names no API family, or an unknown one.',
  ],
  ConsoleChartWidth: [
    'InvalidRequest',
    "width must be an integer from 1 to 10000 (pixels of the chart), got '{width}'.",
    'A console telemetry query gives no chart width, or one out of range.',
  ],
  ConsoleLiveLimit: [
    'ServiceUnavailable',
    'Too many live console feeds are open ({limit:number}); close other console tabs, or raise console.maxLiveClients.',
    'A console live feed (Server-Sent Events) is refused because the configured number is reached.',
  ],
  ConsoleBadRequest: [
    'InvalidRequest',
    'Console request: {problem}',
    "A console endpoint's parameters or body are malformed; the message says which.",
  ],
  // ---- provisioning flows: claims, ownership tokens, the pipeline, bulk tasks, traces (src/provisioning)
  ProvisioningTemplateMissing: [
    'ResourceNotFound',
    'Provisioning failed: the template {templateName} does not exist (create it with CreateProvisioningTemplate, or check the name in the topic)',
    'RegisterThing over MQTT, CreateProvisioningClaim or JITP names a provisioning template that does not exist.',
  ],
  ProvisioningTemplateDisabled: [
    'InvalidRequest',
    'Provisioning failed: the template {templateName} is disabled (enable it with UpdateProvisioningTemplate --enabled)',
    'A provisioning flow names a template whose enabled flag is false.',
  ],
  ProvisioningTemplateType: [
    'InvalidRequest',
    'Provisioning failed: the template {templateName} is of type {type}, and this flow needs a {expected} template',
    'MQTT RegisterThing or a claim names a JITP template, or a CA names a FLEET_PROVISIONING template for JITP.',
  ],
  ProvisioningTemplateInvalid: [
    'InvalidRequest',
    'Provisioning failed: the template is invalid at {path}: {problem} ({more:number} more problems)',
    'RegisterThing, a bulk task or a CA registrationConfig gives a template body that does not parse or check.',
  ],
  ProvisioningParameters: [
    'InvalidRequest',
    'Provisioning failed ({code}) at {path}: {problem}',
    'The template refused the parameters: one is missing, breaks its constraints, or a Condition excludes a resource.',
  ],
  ProvisioningHookRefused: [
    'AccessDenied',
    'Provisioning refused by the pre-provisioning hook: {detail}',
    "The template's pre-provisioning hook said no, timed out (5 s), failed, or answered something else than {allowProvisioning: true}.",
  ],
  ProvisioningApplyFailed: [
    'ResourceRegistrationFailure',
    'Registration failed and nothing was kept: {problem}',
    'Creating or updating the thing, certificate or policies of a registration failed; what was done was undone.',
  ],
  ProvisioningInternal: [
    'InternalFailure',
    'Provisioning failed on an internal error; the provisioning trace and the server log say more',
    'An unexpected failure inside a provisioning flow (the server logs it).',
  ],
  ProvisioningNoCertificate: [
    'InvalidRequest',
    "The template's certificate {logicalId} names no certificate: give CertificateId, CertificatePem or CertificateSigningRequest",
    'A template declares a certificate resource but neither the template nor the request provides one.',
  ],
  ProvisioningCertificateMismatch: [
    'InvalidRequest',
    'The template\'s certificate {logicalId} must be the certificate of this request ({"Ref": "AWS::IoT::Certificate::Id"}), not another one',
    'A fleet or JITP template names another certificate (a parameter, a CertificatePem) than the one the device provisions with.',
  ],
  ProvisioningOverrideFail: [
    'ResourceRegistrationFailure',
    'The {resource} {id} already exists and would change, and its OverrideSettings {setting} is FAIL',
    'RegisterThing would change an existing thing or certificate whose override setting for that property is FAIL.',
  ],
  ProvisioningPayload: [
    'InvalidRequest',
    'The request payload is not valid {format}: {problem}',
    'A provisioning MQTT request whose payload does not decode (JSON or CBOR, as the topic says) or lacks a member.',
  ],
  ProvisioningThrottled: [
    'Throttling',
    'Too many provisioning requests are waiting ({limit:number}); retry later',
    'The provisioning MQTT service queue is full; the request is dropped and answered on /rejected.',
  ],
  OwnershipTokenUnknown: [
    'InvalidRequest',
    'The certificate ownership token is not valid; ask for a new certificate on $aws/certificates/create or create-from-csr',
    'RegisterThing over MQTT with a token this platform never issued (or whose certificate expired and was removed).',
  ],
  OwnershipTokenExpired: [
    'InvalidRequest',
    'The certificate ownership token has expired (tokens are valid for {ttl}); ask for a new certificate',
    'RegisterThing over MQTT with a token older than provisioning.tokenTtlMs (AWS: one hour).',
  ],
  OwnershipTokenUsed: [
    'InvalidRequest',
    'The certificate ownership token was already used by a completed registration; each token is good for one',
    'RegisterThing over MQTT with a token that already completed a registration.',
  ],
  OwnershipTokenBusy: [
    'Conflict',
    'The certificate ownership token is in use by a registration in progress; wait for its answer',
    'Two RegisterThing requests with one token at the same time: the second is refused while the first runs.',
  ],
  RegistrationTaskNotFound: [
    'ResourceNotFound',
    'Thing registration task {taskId} does not exist',
    'DescribeThingRegistrationTask, StopThingRegistrationTask or ListThingRegistrationTaskReports names an unknown task.',
  ],
  RegistrationTaskInput: [
    'InvalidRequest',
    'The registration input file cannot be used: {problem}',
    "StartThingRegistrationTask's inputFileBucket/inputFileKey name no readable local file under provisioning.bulkInputDir or http(s) URL.",
  ],
  RegistrationTaskState: [
    'InvalidRequest',
    'Thing registration task {taskId} is {status}; only an InProgress task can be stopped',
    'StopThingRegistrationTask on a task that already finished or was stopped.',
  ],
  RegistrationReportLink: [
    'Forbidden',
    'This report link is not valid; ask ListThingRegistrationTaskReports for a current one',
    'A registration task report is fetched with a link whose secret does not match the task.',
  ],
  ProvisioningTraceNotFound: [
    'ResourceNotFound',
    'Provisioning trace {attemptId} does not exist (the newest provisioning.traceStored traces are kept)',
    'GET /provisioning/traces/{attemptId} names an attempt that is unknown or was trimmed.',
  ],
  // ---- provisioning templates: the control plane of templates and their versions (src/provisioning)
  ProvisioningTemplateNotFound: [
    'ResourceNotFound',
    'The provisioning template {templateName} does not exist',
    'A provisioning template operation names a template that does not exist.',
  ],
  ProvisioningTemplateVersionNotFound: [
    'ResourceNotFound',
    'The provisioning template {templateName} has no version {versionId}',
    'A template version operation (or UpdateProvisioningTemplate defaultVersionId) names a version the template does not have.',
  ],
  ProvisioningTemplateExists: [
    'ResourceAlreadyExists',
    'The provisioning template {templateName} already exists',
    'CreateProvisioningTemplate with the name of an existing template.',
  ],
  ProvisioningTemplateBody: [
    'InvalidRequest',
    'The templateBody is invalid at {path}: {problem}{others}',
    'CreateProvisioningTemplate or CreateProvisioningTemplateVersion with a body that is not a valid template; the first problem is named, then how many more.',
  ],
  ProvisioningTemplateBodySize: [
    'InvalidRequest',
    'The templateBody is {size:number} bytes; a template may have at most {max:number} bytes (10 KB, as at AWS)',
    'A template body over the size limit.',
  ],
  ProvisioningTemplateVersionsLimit: [
    'VersionsLimitExceeded',
    'The provisioning template {templateName} already has {max:number} versions; delete one (DeleteProvisioningTemplateVersion) first',
    'CreateProvisioningTemplateVersion on a template that has the maximum number of versions (5).',
  ],
  ProvisioningTemplateDefaultVersion: [
    'DeleteConflict',
    'Version {versionId} is the default version of the provisioning template {templateName}; make another version the default (UpdateProvisioningTemplate defaultVersionId) first',
    'DeleteProvisioningTemplateVersion on the default version.',
  ],
  ProvisioningTemplateHookType: [
    'InvalidRequest',
    'A pre-provisioning hook applies to FLEET_PROVISIONING templates only, and {templateName} is {type}',
    'A JITP template is given a preProvisioningHook (AWS calls hooks only for fleet provisioning).',
  ],
  ProvisioningTemplateHookBoth: [
    'InvalidRequest',
    'preProvisioningHook and removePreProvisioningHook cannot be given together; send one of them',
    'UpdateProvisioningTemplate sets and removes the hook in one call.',
  ],
  ProvisioningTemplateHookTarget: [
    'InvalidRequest',
    'The preProvisioningHook cannot be used: {problem}',
    "The hook's targetArn is not a webhook URL Thingstead may call (https://, or http:// to a loopback host unless allowed).",
  ],
  ProvisioningTemplateInUse: [
    'DeleteConflict',
    'The provisioning template {templateName} is in use by {user}; detach it first',
    'DeleteProvisioningTemplate on a template a CA certificate uses for JIT provisioning.',
  ],

  // ---- metering: usage ledger, quotas, exports (src/metering)
  QuotaThrottled: [
    'Throttling',
    'Rate exceeded: {reason}',
    "A control-plane call naming a thing over its apiRate quota (or its billing group's); the reason names the limit.",
  ],
  QuotaThrottledDataPlane: [
    'DataPlaneThrottling',
    'Rate exceeded for the shadow of {thingName}: {reason}',
    "A shadow call over the thing's shadowRate quota (or its billing group's).",
  ],
  QuotaThrottledPublish: [
    'DataPlaneThrottling',
    'Rate exceeded for publishes of {thingName}: {reason}',
    "A device's HTTPS publish (POST /topics/{topic}) over the thing's publishRate, publishBytesRate or shadowRate quota (or its billing group's); nothing was routed.",
  ],
  UsageUnit: [
    'InvalidRequest',
    "unknown usage unit '{unit}'; units are {units:list}",
    'A usage query or price table names a unit the ledger does not keep.',
  ],
  UsageRange: [
    'InvalidRequest',
    'usage range is empty or reversed: from must be before to',
    'A usage query or export whose time range is empty.',
  ],
  UsageTooManyRows: [
    'InvalidRequest',
    'the usage query matches more than {limit:number} rows; narrow the range, name a thing or group by day',
    'A usage query would return more rows than one answer carries.',
  ],
  UsageGroupBy: [
    'InvalidRequest',
    'groupBy must be one of {choices:list}',
    'A usage query asks to group by something else.',
  ],
  QuotaScope: [
    'InvalidRequest',
    'name exactly one of thingName or billingGroupName for a quota',
    'A quota call that names neither or both scopes.',
  ],
  QuotaLimit: [
    'InvalidRequest',
    "unknown quota limit '{limit}'; limits are {limits:list}",
    'A quota call names a limit Thingstead does not enforce.',
  ],
  QuotaValue: [
    'InvalidRequest',
    "quota limit '{limit}' must be a number >= 0, or null to remove it",
    'A quota call gives a limit a value that is not a non-negative number.',
  ],
  ExportKind: [
    'InvalidRequest',
    'export kind must be one of {kinds:list}',
    'An export request names something other than telemetry or usage.',
  ],
  ExportBusy: [
    'Conflict',
    'an export is already running; wait for it (or for the next interval) and retry',
    'Two exports at once would write the same partitions.',
  ],
  MeteringOff: [
    'InvalidRequest',
    'metering is off on this node (metering.enabled=false): there is no live ledger to flush',
    'POST /usage/flush on a platform started without metering.',
  ],
});

/** The name of a message kind. */
export type ErrorKindName = keyof typeof E;
