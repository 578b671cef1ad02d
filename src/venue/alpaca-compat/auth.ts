import type { IncomingMessage } from 'node:http';

/**
 * Who may talk to the venue. With no key configured the venue is open (a local paper venue bound to
 * loopback); with a key pair, REST requests and the trade_updates stream must both present it — the same
 * check for both, so a client cannot read fills over the stream that it could not place over REST.
 */
export type CredentialCheck = (key: unknown, secret: unknown) => boolean;

export function credentialCheck(apiKey: string | undefined, apiSecret: string | undefined): CredentialCheck {
  return (key, secret) => apiKey === undefined || (key === apiKey && (apiSecret === undefined || secret === apiSecret));
}

/** REST: Alpaca's APCA-API-KEY-ID / APCA-API-SECRET-KEY headers. */
export function restRequestAuthorized(check: CredentialCheck, req: IncomingMessage): boolean {
  return check(req.headers['apca-api-key-id'], req.headers['apca-api-secret-key']);
}

/**
 * Stream: the credentials of an auth message, in both forms Alpaca's trade_updates accepts —
 * `{"action":"auth","key","secret"}` and `{"action":"authenticate","data":{"key_id","secret_key"}}`.
 * undefined when the message is no auth message.
 */
export function streamAuthCredentials(
  msg: Record<string, unknown>,
  data: Record<string, unknown>,
): { key: unknown; secret: unknown } | undefined {
  if (msg.action === 'auth') return { key: msg.key, secret: msg.secret };
  if (msg.action === 'authenticate') return { key: data.key_id, secret: data.secret_key };
  return undefined;
}
