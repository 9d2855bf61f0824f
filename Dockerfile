# Static pipe binary on a minimal base image, run as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/pipe ./cmd/pipe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pipe /usr/local/bin/pipe
USER 65532:65532
# The config is mounted here; nothing is written to the root filesystem, so
# the container can run with --read-only.
WORKDIR /etc/pipe
ENTRYPOINT ["/usr/local/bin/pipe"]
CMD ["run", "-f", "/etc/pipe/pipes.yaml"]
