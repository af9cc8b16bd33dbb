# redlab in a small image, for client machines that run perf shares (see
# deploy/k8s/ and the README's "More than one client machine").
#   docker build -t redlab:0.1.0 .
# Build stage: a static musl binary (Alpine's Rust links musl statically),
# with the whole-program `dist` profile.
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY link ./link
RUN cargo build --locked --profile dist --bin redlab \
    && strip target/dist/redlab

# Runtime stage: a shell (the Job computes its share with $((...))) and CA
# certificates for rediss://, nothing else; not root.
FROM alpine:3.20
RUN apk add --no-cache ca-certificates \
    && adduser -D -u 10001 redlab
COPY --from=build /src/target/dist/redlab /usr/local/bin/redlab
USER 10001
ENTRYPOINT ["redlab"]
CMD ["--help"]
