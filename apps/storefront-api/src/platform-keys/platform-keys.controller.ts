import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { PlatformKeysView } from '@imagemart/contracts';
import { Public } from '../auth/public.decorator.js';
import { PlatformKeysReader } from './platform-keys.reader.js';

@ApiTags('platform')
@Controller('v1/platform')
export class PlatformKeysController {
  constructor(private readonly keys: PlatformKeysReader) {}

  @Public()
  @Get('keys')
  @ApiOperation({
    summary:
      "The platform's public keys (PEM, with their sha256: fingerprints): `wrapping` is the RSA key a seller wraps a bundle's " +
      'data key for (RSA-OAEP-SHA256); `signing` signs the manifests of the bundles the platform makes. 503 until the bundler-worker has started.',
  })
  get(): Promise<PlatformKeysView> {
    return this.keys.get();
  }
}
