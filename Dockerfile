# Vestibule container image: a release build of the `vestibule` binary on distroless glibc.
#
#   docker build -t vestibule:0.1.0 .
#
# The builder is Debian bookworm, the same glibc as the distroless debian12 runtime.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The workspace's release profile keeps line tables (about 90 MB of binary). The image keeps
# only symbols, so panics and backtraces still name functions, at about 20 MB.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN cargo build --release --locked --bin vestibule \
 && install -D -m 0755 target/release/vestibule /out/vestibule

# cc: glibc and libgcc, no shell, no package manager. The nonroot tag's user is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vestibule /usr/local/bin/vestibule
USER 65532:65532
# http, https, admin (/healthz and /readyz; set VESTIBULE_ADMIN_ADDR=0.0.0.0:10254 to reach it
# from outside the container, since it listens on loopback by default).
EXPOSE 8080 8443 10254
ENTRYPOINT ["/usr/local/bin/vestibule"]
CMD ["serve"]
