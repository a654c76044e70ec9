import { invalidArgument } from "../../libs/errors/index.ts";
import type { Credential, InjectionScheme } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { normalizeOrigin } from "./origin.ts";
import { validateScheme } from "./scheme.ts";

/** Caller-chosen credential ids: DNS-label style, so they never look like a `cred_` id. */
const credentialIdPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;
const maxDisplayName = 200;
const maxOrigins = 32;
const maxRequestId = 128;

/** The writable metadata of a credential, checked and normalized. */
export interface CredentialInput {
  displayName: string;
  scheme: InjectionScheme;
  /** Normalized, without duplicates, in the caller's order. */
  allowedOrigins: string[];
}

/** Checks the writable fields of a Credential; output-only fields are ignored. */
export function parseCredentialInput(credential: Credential | undefined): CredentialInput {
  if (!credential) throw invalidArgument("credential is required");
  if (credential.displayName.length > maxDisplayName) {
    throw invalidArgument(`credential.display_name must be at most ${maxDisplayName} characters`);
  }
  const scheme = validateScheme(credential.scheme);
  if (credential.allowedOrigins.length === 0) {
    throw invalidArgument("credential.allowed_origins needs at least one origin");
  }
  if (credential.allowedOrigins.length > maxOrigins) {
    throw invalidArgument(`credential.allowed_origins allows at most ${maxOrigins} origins`);
  }
  const allowedOrigins = [
    ...new Set(
      credential.allowedOrigins.map((origin) =>
        normalizeOrigin(origin, "credential.allowed_origins"),
      ),
    ),
  ];
  return { displayName: credential.displayName, scheme, allowedOrigins };
}

/** Checks an optional caller-chosen credential id; empty means "generate one". */
export function parseCredentialId(id: string): string | undefined {
  if (id === "") return undefined;
  if (!credentialIdPattern.test(id)) {
    throw invalidArgument(
      "credential_id must be 1-63 lower-case letters, digits or '-', starting with a letter or digit",
    );
  }
  return id;
}

/** Checks an optional idempotency key; empty means none. */
export function parseRequestId(requestId: string): string | undefined {
  if (requestId === "") return undefined;
  if (requestId.length > maxRequestId || /\p{Cc}/u.test(requestId)) {
    throw invalidArgument(
      `request_id must be at most ${maxRequestId} characters without control characters`,
    );
  }
  return requestId;
}
