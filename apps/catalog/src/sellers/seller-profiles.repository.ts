import { Injectable } from '@nestjs/common';
import { PrismaClient, type SellerProfile } from '@imagemart/database';

@Injectable()
export class SellerProfilesRepository {
  constructor(private readonly prisma: PrismaClient) {}

  findMany(ids: string[]): Promise<SellerProfile[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.prisma.sellerProfile.findMany({ where: { id: { in: [...new Set(ids)] } } });
  }

  upsert(id: string, data: { displayName: string; about: string; website: string | null }): Promise<SellerProfile> {
    return this.prisma.sellerProfile.upsert({ where: { id }, create: { id, ...data }, update: data });
  }
}
