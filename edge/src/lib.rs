//! REST/JSON transcoding and gRPC-web for browsers. Not built yet: see the open issues.
