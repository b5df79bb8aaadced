# A static binary on a distroless, non-root base. `make image-check` runs this file's
# build command, with the same flags, on machines without a Docker engine.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/reconcile .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/reconcile /reconcile
USER nonroot:nonroot
ENTRYPOINT ["/reconcile"]
