import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'imagemart:is-public';
export const IS_OPTIONAL_AUTH = 'imagemart:optional-auth';

/** Opts a route out of authentication. Every other route requires an API key. */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/**
 * A route anyone may call, that answers more to a signed-in caller (the catalog: anyone sees
 * public images, an account also its own and those shared with it). Without an Authorization
 * header the caller is anonymous; with one, the key must be valid.
 */
export const OptionalAuth = () => SetMetadata(IS_OPTIONAL_AUTH, true);
