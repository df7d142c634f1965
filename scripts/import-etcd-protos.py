#!/usr/bin/env python3
"""Copies etcd 3.4's v3 protos from Debian's golang-etcd-server-dev into Protos/, stripped of
what protoc cannot resolve here: the gogoproto import and options and the grpc-gateway HTTP
annotations. Message names, field numbers, packages and method paths are left untouched, so the
wire format and the gRPC paths stay etcd's."""
import os
import re
import sys

SRC = "/usr/share/gocode/src/go.etcd.io/etcd"
FILES = [
    "etcdserver/etcdserverpb/rpc.proto",
    "mvcc/mvccpb/kv.proto",
    "auth/authpb/auth.proto",
    "etcdserver/api/v3lock/v3lockpb/v3lock.proto",
    "etcdserver/api/v3election/v3electionpb/v3election.proto",
]


def strip_http_options(text):
    # `option (google.api.http) = { ... };` blocks nest braces, so walk them by depth.
    out, i = [], 0
    marker = "option (google.api.http)"
    while True:
        j = text.find(marker, i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        k = text.index("{", j)
        depth = 0
        while True:
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        k = text.index(";", k) + 1
        i = k


def clean(text):
    text = strip_http_options(text)
    text = re.sub(r'^import "(gogoproto/gogo|google/api/annotations)\.proto";\n', "", text, flags=re.M)
    text = re.sub(r"^option \(gogoproto\.[a-z_]+\) = \w+;\n", "", text, flags=re.M)
    # Field-level gogoproto options: `[(gogoproto.nullable) = false]` and friends.
    text = re.sub(r"\s*\[\(gogoproto\.[^\]]*\]", "", text)
    # An rpc whose only option was removed is left as `{\n  }`: make it `{}`.
    text = re.sub(r"\{\s*\}", "{}", text)
    return text


# etcd 3.5's Auth.AuthStatus, which newer clients call first: added to the 3.4 service with 3.5's
# method path and message field numbers.
AUTH_STATUS_RPC = """
  // AuthStatus displays authentication status (etcd 3.5).
  rpc AuthStatus(AuthStatusRequest) returns (AuthStatusResponse) {}
"""
AUTH_STATUS_MESSAGES = """
message AuthStatusRequest {
}

message AuthStatusResponse {
  ResponseHeader header = 1;
  bool enabled = 2;
  // authRevision is the current revision of auth store
  uint64 authRevision = 3;
}
"""


def add_auth_status(text):
    anchor = "  rpc AuthDisable(AuthDisableRequest) returns (AuthDisableResponse) {}\n"
    assert anchor in text, "AuthDisable rpc not found"
    text = text.replace(anchor, anchor + AUTH_STATUS_RPC, 1)
    return text + AUTH_STATUS_MESSAGES


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "Protos"
    for rel in FILES:
        with open(os.path.join(SRC, rel)) as f:
            text = clean(f.read())
        if rel.endswith("rpc.proto"):
            text = add_auth_status(text)
        dest = os.path.join(root, "etcd", rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as f:
            f.write(text)
        print(dest)


if __name__ == "__main__":
    main()
