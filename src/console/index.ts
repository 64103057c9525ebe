/**
 * The web console: a static single-page app (built from console/ into dist/console/web) served at `/` on
 * the HTTP port, sign-in with an access key to a session cookie, and the console's own endpoints under
 * /console/api/ (fleet overview, downsampled telemetry, the live feed, connection history, presigned MQTT
 * URLs for the topic viewer). Every change the console makes goes through the AWS-compatible APIs with the
 * session standing in for a SigV4 signature (`ConsoleService.session`), so a read-only key sees everything
 * and changes nothing, exactly as with the AWS CLI.
 * Imports: api (types), errors, mqtt (types), observability, registry (fleet query), sigv4, store, timeseries.
 */
export { startConsole, SERVICE_HEADER, type ConsoleService } from './module.js';
export { CSRF_HEADER, SESSION_COOKIE } from './sessions.js';
export { CONSOLE_CSP, defaultConsoleDir } from './static.js';
export { presignMqttUrl } from './presign.js';
export { stepFor } from './api.js';
