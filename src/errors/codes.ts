/**
 * The catalog codes: each has an HTTP status, the AWS exception name where the API is AWS-compatible, and the
 * MQTT 5 reason code where one applies. A code is the wire identity of an error (x-amzn-ErrorType); the
 * message kinds in `kinds.ts` say which of them is raised, with which text.
 */
export interface ErrorSpec {
  /** HTTP status for the control plane (AWS's where AWS-compatible). */
  readonly status: number;
  /** AWS exception name, sent as x-amzn-ErrorType. */
  readonly awsName: string;
  /** MQTT 5 reason code, where the error can surface on MQTT. */
  readonly mqttReason?: number;
}

export const ERRORS = {
  InvalidRequest: { status: 400, awsName: 'InvalidRequestException', mqttReason: 0x83 },
  Throttling: { status: 400, awsName: 'ThrottlingException', mqttReason: 0x97 },
  Unauthorized: { status: 401, awsName: 'UnauthorizedException', mqttReason: 0x87 },
  Forbidden: { status: 403, awsName: 'ForbiddenException', mqttReason: 0x87 },
  AccessDenied: { status: 403, awsName: 'AccessDeniedException', mqttReason: 0x87 },
  InvalidSignature: { status: 403, awsName: 'InvalidSignatureException' },
  UnrecognizedClient: { status: 403, awsName: 'UnrecognizedClientException' },
  MissingAuthenticationToken: { status: 403, awsName: 'MissingAuthenticationTokenException' },
  ResourceNotFound: { status: 404, awsName: 'ResourceNotFoundException' },
  MethodNotAllowed: { status: 405, awsName: 'MethodNotAllowedException' },
  CertificateState: { status: 406, awsName: 'CertificateStateException' },
  ResourceAlreadyExists: { status: 409, awsName: 'ResourceAlreadyExistsException' },
  VersionConflict: { status: 409, awsName: 'VersionConflictException' },
  DeleteConflict: { status: 409, awsName: 'DeleteConflictException' },
  Conflict: { status: 409, awsName: 'ConflictException' },
  VersionsLimitExceeded: { status: 409, awsName: 'VersionsLimitExceededException' },
  ConflictingResourceUpdate: { status: 409, awsName: 'ConflictingResourceUpdateException' },
  LimitExceeded: { status: 410, awsName: 'LimitExceededException' },
  /** Jobs: a job or job execution cannot move from its state to the one asked for (both job APIs: 409). */
  InvalidStateTransition: { status: 409, awsName: 'InvalidStateTransitionException' },
  EntityTooLarge: { status: 413, awsName: 'RequestEntityTooLargeException', mqttReason: 0x95 },
  MalformedPolicy: { status: 400, awsName: 'MalformedPolicyException' },
  SqlParse: { status: 400, awsName: 'SqlParseException' },
  InvalidQuery: { status: 400, awsName: 'InvalidQueryException' },
  CertificateValidation: { status: 400, awsName: 'CertificateValidationException' },
  CertificateConflict: { status: 409, awsName: 'CertificateConflictException' },
  RegistrationCodeValidation: { status: 400, awsName: 'RegistrationCodeValidationException' },
  /** RegisterThing: creating or updating a resource of the template failed. */
  ResourceRegistrationFailure: { status: 400, awsName: 'ResourceRegistrationFailureException' },
  /** Data plane (shadows): AWS answers 415 for a document that is not UTF-8. */
  UnsupportedDocumentEncoding: { status: 415, awsName: 'UnsupportedDocumentEncodingException' },
  /** Data plane throttling is HTTP 429 (the control plane's ThrottlingException is 400). */
  DataPlaneThrottling: { status: 429, awsName: 'ThrottlingException', mqttReason: 0x97 },
  InternalFailure: { status: 500, awsName: 'InternalFailureException', mqttReason: 0x80 },
  ServiceUnavailable: { status: 503, awsName: 'ServiceUnavailableException', mqttReason: 0x88 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
