# One image for every process; the command picks the app. Build: docker build -t imagemart .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY tools/prisma-generate.mjs tools/
COPY prisma prisma
COPY prisma.config.ts ./
RUN npm install --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/prisma prisma
COPY --from=build /app/package.json ./
# Where docker-compose keeps the bundler's generated platform keys; a new named volume takes this
# directory's owner, so the node user can write it.
RUN mkdir -p /keys && chown node:node /keys && chmod 700 /keys
USER node
CMD ["node", "dist/apps/storefront-api/src/main.js"]
