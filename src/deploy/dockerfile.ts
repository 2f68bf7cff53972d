/**
 * `autoprox dockerfile`: a multi-stage container recipe (build with dev dependencies, run with
 * production ones only, as a non-root user). Documentation only: no Docker engine runs here,
 * so nothing claims this image was built. The server runs with the node flags of node-flags.ts.
 */
import { SERVER_NODE_FLAGS } from './node-flags.js';

export function dockerfile(): string {
  return `# syntax=docker/dockerfile:1
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY machines ./machines
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY visualizations ./visualizations
USER node
# HTTP/WebSocket (TCP) and peers (UDP). Listen on all addresses inside the container.
EXPOSE 8080/tcp 40000/udp
ENV AUTOPROX_HOST=0.0.0.0
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", ${SERVER_NODE_FLAGS.map((flag) => JSON.stringify(flag)).join(', ')}, "dist/src/cli.js"]
CMD ["serve"]
`;
}
