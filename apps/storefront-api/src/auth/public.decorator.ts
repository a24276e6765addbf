import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'imagemart:is-public';

/** Opts a route out of authentication. Every other route requires an API key. */
export const Public = () => SetMetadata(IS_PUBLIC, true);
