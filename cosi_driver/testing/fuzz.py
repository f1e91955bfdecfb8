"""A seeded fuzz of every COSI RPC, v1alpha1 and v1alpha2, against any endpoint.

The conformance robustness checks send a short fixed list of odd inputs; this sends thousands of
random ones, generated from a seed: names, ids and parameter maps of every size around the spec's
limits (128 bytes, 4 KiB), in every script (CJK, emoji, combining marks), with C0/C1 control,
bidi and zero-width characters, ids in and out of the driver's layouts (the legacy ``v1/...`` and
the current ``v2.<backend>.b.<name>``, valid, nearly valid and garbage), enum values outside the
enum. The v1alpha2 calls (:mod:`.fuzz_v1alpha2`) add existing buckets, grants over several buckets
with a mode each and revokes of bucket lists. Most requests are built from a small pool of
well-formed names so that a good share of the calls reach storage (creates, grants, revokes and
deletes of real buckets), not only validation.

What counts as a problem: UNKNOWN or INTERNAL, a call that does not answer within its bound, a
stack trace or a secret (one given by the caller, or any credential the driver returned during
the run) in a status message. Everything the fuzz created is revoked and deleted at the end.

Reproducibility: requests are drawn from the seed in order; with ``concurrency`` > 1 which
account ids are known at a given moment depends on timing, so use ``concurrency=1`` to replay a
run exactly.

Usage: ``python -m cosi_driver.testing.fuzz --endpoint unix:///run/cosi.sock --calls 10000``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from cosi_driver.core import ids
from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

BAD_CODES = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/')
SECRET_FIELDS = ("secret", "token", "password")  # credential entries whose values are secret

# Characters the generator mixes into strings, by kind.
ALPHABETS: dict[str, str] = {
    "dns": "abcdefghijklmnopqrstuvwxyz0123456789-",
    "ascii": "".join(chr(c) for c in range(0x20, 0x7F)),
    "latin": "àéîõüßçñøÆ",
    "cjk": "桶存储对象数据東京서울",
    "emoji": "📦🪣🧪🔥👩‍💻🏳️‍🌈",
    "combining": "e\u0301a\u0308\u20dd",
    "control": "".join(chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]),
    "bidi": "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
    "invisible": "\u200b\u200c\u200d\u2060\ufeff\u00ad",
    "space": " \t\u00a0\u3000\u2028",
    "path": "/./../\\%",
}
# Byte sizes around the limits the driver enforces (and far beyond them).
SIZES = (0, 1, 2, 63, 64, 100, 113, 114, 115, 120, 126, 127, 128, 129, 130, 200, 255, 256, 1024, 4096, 10240)
KNOWN_KEYS = ("deletionPolicy", "accessMode", "backend", "versioning", "quota", "maxSize", "region")
KNOWN_VALUES = ("retain", "delete", "purge", "read", "write", "readwrite", "true", "false", "1Gi", "0", "-1", "")
ODD_VERSIONS = ("0", "2", "9", "\u0661")  # the last is ARABIC-INDIC DIGIT ONE
AUTH_VALUES = (pb.UnknownAuthenticationType, pb.Key, pb.IAM, 3, 99, 2**31 - 1, -1)

# Long names of multi-byte characters whose percent-encoded state file names passed 255 bytes
# (issue 20: 8 INTERNAL answers from DriverCreateBucket). Sent by every run, first.
REGRESSION_NAMES: tuple[str, ...] = (
    *("桶" * n for n in (24, 30, 36, 38, 40, 41, 42)),
    *("📦" * n for n in (18, 24, 28, 30, 32)),
    "é" * 57,
    "桶📦" * 16,
)


# Account ids of the current layout whose names no backend issues: a NUL byte, a '/', 300 bytes.
# The filesystem backend once answered Revoke of the first with INTERNAL and of the last with
# UNAVAILABLE (retried forever); Revoke of an account that cannot exist is OK. Sent every run.
REGRESSION_ACCOUNT_NAMES: tuple[str, ...] = ("acct-\x00", "a/b", "x" * 300)


@dataclass
class FuzzReport:
    calls: int = 0
    seconds: float = 0.0
    codes: Counter[str] = field(default_factory=Counter)
    by_rpc: dict[str, Counter[str]] = field(default_factory=dict)
    by_api: Counter[str] = field(default_factory=Counter)  # calls per COSI API
    problems: list[str] = field(default_factory=list)
    regressions: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (code, message)
    revoke_regressions: dict[str, str] = field(default_factory=dict)  # "<api> <account id>" -> code
    cleanup_failures: list[str] = field(default_factory=list)

    def count(self, rpc: str, code: grpc.StatusCode) -> None:
        self.calls += 1
        self.codes[code.name] += 1
        self.by_rpc.setdefault(rpc, Counter())[code.name] += 1
        self.by_api[rpc.split(" ", 1)[0] if " " in rpc else "v1alpha1"] += 1

    def summary(self) -> str:
        codes = ", ".join(f"{name} {n}" for name, n in self.codes.most_common())
        lines = [f"{self.calls} calls in {self.seconds:.1f} s ({self.calls / max(self.seconds, 1e-9):.0f}/s): {codes}"]
        lines.append("  calls per API: " + ", ".join(f"{api} {n}" for api, n in sorted(self.by_api.items())))
        for rpc, counter in sorted(self.by_rpc.items()):
            lines.append(f"  {rpc}: " + ", ".join(f"{name} {n}" for name, n in counter.most_common()))
        lines.append(f"  problems: {len(self.problems)}; cleanup failures: {len(self.cleanup_failures)}")
        lines.extend(f"    {problem}" for problem in self.problems[:10])
        return "\n".join(lines)


class Inputs:
    """Random requests from one seed; ``pool`` names are valid S3/DNS names, shared by all RPCs."""

    def __init__(self, seed: int, backend: str, pool_size: int = 40) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test input, not a secret
        self.backend = backend
        self.pool = [f"fz{seed % 100000}-{n}" for n in range(pool_size)]
        self.accounts: list[tuple[str, str]] = []  # (bucket_id, account_id) the driver returned
        self.accounts2: list[tuple[str, list[str]]] = []  # v1alpha2: (account_id, bucket_ids)
        self.buckets: set[str] = set()  # bucket ids the driver returned

    def text(self) -> str:
        """A string of a random byte size built from one to three alphabets."""
        rng = self.rng
        kinds = rng.sample(sorted(ALPHABETS), rng.randint(1, 3))
        target = rng.choice(SIZES)
        chars: list[str] = []
        size = 0
        while size < target:
            ch = rng.choice(ALPHABETS[rng.choice(kinds)])
            size += len(ch.encode())
            chars.append(ch)
        return "".join(chars)

    def name(self) -> str:
        roll = self.rng.random()
        if roll < 0.5:
            return self.rng.choice(self.pool)
        if roll < 0.6:
            return self.rng.choice(REGRESSION_NAMES)
        return self.text()

    def bucket_id(self) -> str:
        rng, roll = self.rng, self.rng.random()
        if roll < 0.25:
            return f"v1/{self.backend}/{rng.choice(self.pool)}"
        if roll < 0.45:
            return ids.BucketRef(self.backend, rng.choice(self.pool), existing=rng.random() < 0.2).encode()
        if roll < 0.55 and (self.accounts or self.buckets):
            known = [bucket for bucket, _ in self.accounts] or sorted(self.buckets)
            return rng.choice(known)
        choices = (
            lambda: f"v1/{self.backend}/{self.text()}",
            lambda: f"v1/{rng.choice(['other', 'x', self.backend.upper(), ''])}/{rng.choice(self.pool)}",
            lambda: f"v{rng.choice(ODD_VERSIONS)}/{self.backend}/{rng.choice(self.pool)}",
            lambda: ids.BucketRef(self.backend, self.text()).encode(),
            self.near_v2_bucket_id,
            lambda: rng.choice(self.pool),
            self.text,
            lambda: "/".join(self.text()[:20] for _ in range(rng.randint(2, 5))),
        )
        return rng.choice(choices)()

    def near_v2_bucket_id(self) -> str:
        """An id one step away from the ``v2`` layout: wrong kind, backend, escape, length or tag."""
        rng, name = self.rng, self.rng.choice(self.pool)
        choices = (
            lambda: f"v2.{self.backend}.{rng.choice(['x', 'bb', 'a0', '', 'B', 'E', '.'])}.{name}",
            lambda: f"v2.{rng.choice(['other', self.backend.upper(), '', '-x', 'a' * 40])}.b.{name}",
            lambda: f"v2.{self.backend}.B.{rng.choice([name, '!!', 'YQ', 'YQ=', self.text()])}",
            lambda: f"v2.{self.backend}.b.{name}.{rng.choice(['', '.', 'x.y'])}",
            lambda: f"v{rng.choice(['3', '20', '', 'V2'])}.{self.backend}.b.{name}",
            lambda: f"v2.{self.backend}.b." + "a" * rng.choice((2040, 2048, 2049, 5000)),
            lambda: f"v2/{self.backend}/b/{name}",
        )
        return rng.choice(choices)()

    def account_id(self) -> str:
        rng, roll = self.rng, self.rng.random()
        if roll < 0.3 and (self.accounts or self.accounts2):
            known = [account for _, account in self.accounts] + [account for account, _ in self.accounts2]
            return rng.choice(known)
        version = rng.choice(["0", "1", "7", "²", "\u0661", "-1", "99999999999999999999", "", "x"])
        v2_version = rng.choice(["0", "1", "01", "1234567890", "-1", "", "x", "\u0661"])
        kind = rng.choice(["a", "A", "b", "aa", ""])
        choices = (
            lambda: f"v1/{self.backend}/{version}/acct-{rng.randrange(16**6):06x}",
            lambda: f"v1/{self.backend}/{version}/{self.text()}",
            lambda: f"v1/other/0/{rng.choice(self.pool)}",
            lambda: ids.AccountRef(self.backend, f"ba-{rng.randrange(16**6):06x}", rng.choice((0, 1, 7))).encode(),
            lambda: ids.AccountRef(self.backend, self.text(), 0).encode(),
            lambda: f"v2.{self.backend}.{kind}{v2_version}.{rng.choice(self.pool)}",
            lambda: f"v2.{rng.choice(['other', ''])}.a0.{rng.choice(self.pool)}",
            self.text,
        )
        return rng.choice(choices)()

    def params(self, valid: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
        """A map: often only valid entries, sometimes odd keys, values or sizes."""
        rng, roll = self.rng, self.rng.random()
        chosen: dict[str, str] = {}
        if roll < 0.5:
            for key, values in valid:
                if rng.random() < 0.5:
                    chosen[key] = rng.choice(values)
            return chosen
        for _ in range(rng.choice((1, 2, 3, 5, 40))):
            key = rng.choice(KNOWN_KEYS) if rng.random() < 0.6 else self.text()[:200]
            value = rng.choice(KNOWN_VALUES) if rng.random() < 0.6 else self.text()
            chosen[key] = value
        return chosen

    def auth(self) -> int:
        return pb.Key if self.rng.random() < 0.7 else self.rng.choice(AUTH_VALUES)


BUCKET_PARAMS = (("deletionPolicy", ("delete", "retain", "purge")),)
ACCESS_PARAMS = (("accessMode", ("read", "write", "readwrite")),)


class Fuzzer:
    def __init__(
        self,
        endpoint: str,
        *,
        seed: int,
        backend: str,
        secrets: Iterable[str] = (),
        call_timeout: float = 15.0,
        apis: Sequence[str] = ("v1alpha1",),
    ) -> None:
        from cosi_driver.testing.fuzz_v1alpha2 import V1Alpha2Calls

        self.endpoint = endpoint
        self.apis = tuple(apis)
        self.inputs = Inputs(seed, backend)
        self.secrets = {secret for secret in secrets if secret}
        self.call_timeout = call_timeout
        self.report = FuzzReport()
        self.messages: dict[str, str] = {}  # message -> the first call that produced it
        self._channel = grpc.aio.insecure_channel(endpoint)
        self.identity = pb_grpc.IdentityStub(self._channel)
        self.provisioner = pb_grpc.ProvisionerStub(self._channel)
        self.v2 = V1Alpha2Calls(self, self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def call(self, rpc: str, invoke: Callable[[], Awaitable[Any]], label: str) -> tuple[grpc.StatusCode, Any]:
        """One bounded call; records its code and whatever in its answer must be checked."""
        try:
            response = await asyncio.wait_for(invoke(), self.call_timeout)
        except TimeoutError:
            self.report.problems.append(f"{rpc} with {label} did not answer within {self.call_timeout:g}s")
            self.report.count(rpc, grpc.StatusCode.DEADLINE_EXCEEDED)
            return grpc.StatusCode.DEADLINE_EXCEEDED, None
        except grpc.aio.AioRpcError as error:
            code, message = error.code(), error.details() or ""
            self.report.count(rpc, code)
            self.messages.setdefault(message, f"{rpc} with {label}")
            if code in BAD_CODES:
                self.report.problems.append(f"{rpc} with {label} answered {code.name}: {message[:200]}")
            if any(marker in message for marker in TRACEBACK_MARKERS):
                self.report.problems.append(f"{rpc} with {label} put a stack trace in its status message")
            return code, message
        self.report.count(rpc, grpc.StatusCode.OK)
        credentials = getattr(response, "credentials", None)
        if credentials is not None and hasattr(credentials, "ListFields"):  # v1alpha2: one slot of fields
            self.secrets.update(
                str(value)
                for _, slot in credentials.ListFields()
                for key, value in slot.ListFields()
                if any(s in key.name for s in SECRET_FIELDS)
            )
        elif credentials is not None:  # v1alpha1: a map of secret maps
            for entry in credentials.values():
                self.secrets.update(v for k, v in entry.secrets.items() if any(s in k.lower() for s in SECRET_FIELDS))
        return grpc.StatusCode.OK, response

    # -- one random call per RPC ----------------------------------------------------------------

    async def get_info(self) -> None:
        await self.call("DriverGetInfo", lambda: self.identity.DriverGetInfo(pb.DriverGetInfoRequest()), "no fields")

    async def create(self, name: str | None = None) -> tuple[grpc.StatusCode, Any]:
        """A random Create; with ``name``, a plain Create of that name (no parameters)."""
        parameters = self.inputs.params(BUCKET_PARAMS) if name is None else {}
        name = self.inputs.name() if name is None else name
        request = pb.DriverCreateBucketRequest(name=name, parameters=parameters)
        code, answer = await self.call(
            "DriverCreateBucket", lambda: self.provisioner.DriverCreateBucket(request), repr(name)
        )
        if code is grpc.StatusCode.OK:
            self.inputs.buckets.add(answer.bucket_id)
        return code, answer

    async def delete(self) -> None:
        request = pb.DriverDeleteBucketRequest(
            bucket_id=self.inputs.bucket_id(), delete_context=self.inputs.params(BUCKET_PARAMS)
        )
        await self.call(
            "DriverDeleteBucket", lambda: self.provisioner.DriverDeleteBucket(request), repr(request.bucket_id)
        )

    async def grant(self) -> None:
        request = pb.DriverGrantBucketAccessRequest(
            bucket_id=self.inputs.bucket_id(),
            name=self.inputs.name(),
            authentication_type=self.inputs.auth(),  # type: ignore[arg-type]  # outside the enum on purpose
            parameters=self.inputs.params(ACCESS_PARAMS),
        )
        label = f"{request.bucket_id!r}, name {request.name!r}"
        code, response = await self.call(
            "DriverGrantBucketAccess", lambda: self.provisioner.DriverGrantBucketAccess(request), label
        )
        if code is grpc.StatusCode.OK:
            self.inputs.accounts.append((request.bucket_id, response.account_id))

    async def revoke(self) -> None:
        request = pb.DriverRevokeBucketAccessRequest(
            bucket_id=self.inputs.bucket_id(), account_id=self.inputs.account_id()
        )
        label = f"{request.bucket_id!r}, account {request.account_id!r}"
        await self.call("DriverRevokeBucketAccess", lambda: self.provisioner.DriverRevokeBucketAccess(request), label)

    # -- a run ----------------------------------------------------------------------------------

    async def run(self, calls: int, concurrency: int) -> FuzzReport:
        started = time.perf_counter()
        for name in REGRESSION_NAMES:
            code, answer = await self.create(name)
            self.report.regressions[name] = (code.name, answer if isinstance(answer, str) else "")
        await self.revoke_regressions()
        weighted: list[Callable[[], Awaitable[Any]]] = []
        if "v1alpha1" in self.apis:
            weighted += [self.get_info] + [self.create] * 4 + [self.delete] * 3 + [self.grant] * 4 + [self.revoke] * 3
        if "v1alpha2" in self.apis:
            weighted += self.v2.weighted()
        remaining = calls - len(REGRESSION_NAMES)
        choices = [self.inputs.rng.choice(weighted) for _ in range(max(remaining, 0))]
        queue = iter(choices)

        async def worker() -> None:
            for step in queue:
                await step()

        await asyncio.gather(*(worker() for _ in range(max(concurrency, 1))))
        await self.cleanup()
        await self.check_alive()
        self.check_secrets()
        self.report.seconds = time.perf_counter() - started
        return self.report

    async def revoke_regressions(self) -> None:
        bucket_id = ids.BucketRef(self.inputs.backend, self.inputs.pool[0]).encode()
        for name in REGRESSION_ACCOUNT_NAMES:
            account_id = ids.AccountRef(self.inputs.backend, name).encode()
            label = f"account {account_id!r}"
            request = pb.DriverRevokeBucketAccessRequest(bucket_id=bucket_id, account_id=account_id)
            v1 = functools.partial(self.provisioner.DriverRevokeBucketAccess, request)
            code, _ = await self.call("DriverRevokeBucketAccess", v1, label)
            self.report.revoke_regressions[f"v1alpha1 {account_id}"] = code.name
            if "v1alpha2" in self.apis:
                v2 = functools.partial(self.v2.revoke_call, account_id, [bucket_id])
                code, _ = await self.call("v1alpha2 DriverRevokeBucketAccess", v2, label)
                self.report.revoke_regressions[f"v1alpha2 {account_id}"] = code.name

    async def cleanup(self) -> None:
        """Revoke every account and delete every bucket the run may have created."""
        for bucket_id, account_id in self.inputs.accounts:
            revoke = pb.DriverRevokeBucketAccessRequest(bucket_id=bucket_id, account_id=account_id)
            await self._cleanup_call(f"revoke {account_id!r}", self.provisioner.DriverRevokeBucketAccess(revoke))
        for account_id, bucket_ids in self.inputs.accounts2:
            await self._cleanup_call(f"revoke {account_id!r}", self.v2.revoke_call(account_id, bucket_ids))
        pool = {f"v1/{self.inputs.backend}/{name}" for name in self.inputs.pool}
        for bucket_id in sorted(pool | self.inputs.buckets):
            if not bucket_id.startswith(ids.LEGACY_VERSION + "/"):  # v2 ids may be too long for v1alpha1
                await self._cleanup_call(f"delete {bucket_id!r}", self.v2.purge_call(bucket_id))
                continue
            delete = pb.DriverDeleteBucketRequest(bucket_id=bucket_id, delete_context={"deletionPolicy": "purge"})
            await self._cleanup_call(f"delete {bucket_id!r}", self.provisioner.DriverDeleteBucket(delete))

    async def _cleanup_call(self, what: str, call: Awaitable[Any]) -> None:
        tolerated = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)  # never created
        try:
            await asyncio.wait_for(call, self.call_timeout)
        except TimeoutError:
            self.report.cleanup_failures.append(f"{what}: no answer within {self.call_timeout:g}s")
        except grpc.aio.AioRpcError as error:
            if error.code() not in tolerated:
                self.report.cleanup_failures.append(f"{what}: {error.code().name} {error.details()}")

    async def check_alive(self) -> None:
        """After the storm the driver must still answer, and still do real work."""
        name = f"{self.inputs.pool[0]}-alive"
        try:
            await asyncio.wait_for(self.identity.DriverGetInfo(pb.DriverGetInfoRequest()), self.call_timeout)
            if "v1alpha2" in self.apis:
                await asyncio.wait_for(self.v2.info_call(), self.call_timeout)
            created = await asyncio.wait_for(
                self.provisioner.DriverCreateBucket(pb.DriverCreateBucketRequest(name=name)), self.call_timeout
            )
            await asyncio.wait_for(
                self.provisioner.DriverDeleteBucket(pb.DriverDeleteBucketRequest(bucket_id=created.bucket_id)),
                self.call_timeout,
            )
        except (TimeoutError, grpc.aio.AioRpcError) as error:
            detail = error.code().name if isinstance(error, grpc.aio.AioRpcError) else "no answer"
            self.report.problems.append(f"after the fuzz the driver no longer works: {detail}")

    def check_secrets(self) -> None:
        for message, first in self.messages.items():
            if any(secret in message for secret in self.secrets):
                self.report.problems.append(f"{first}: a secret appears in the status message")


async def fuzz(
    endpoint: str,
    *,
    calls: int = 10_000,
    seed: int = 0,
    backend: str = "filesystem",
    concurrency: int = 8,
    secrets: Iterable[str] = (),
    call_timeout: float = 15.0,
    apis: Sequence[str] = ("v1alpha1", "v1alpha2"),
) -> FuzzReport:
    """Run ``calls`` random calls (the regression cases included) against ``endpoint``.

    ``backend`` is the backend name the driver uses in its ids (``v1/<backend>/...``,
    ``v2.<backend>....``) for the default backend; ``secrets`` are strings that must never appear
    in a status message (the credentials the driver returns are added as they arrive); ``apis``
    the COSI APIs whose RPCs are mixed into the run.
    """
    fuzzer = Fuzzer(endpoint, seed=seed, backend=backend, secrets=secrets, call_timeout=call_timeout, apis=apis)
    try:
        return await fuzzer.run(calls, concurrency)
    finally:
        await fuzzer.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cosi_driver.testing.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", required=True, help="unix:///path/to/cosi.sock")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="filesystem", help="the default backend's name in bucket ids")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--api", choices=("v1alpha1", "v1alpha2", "both"), default="both")
    args = parser.parse_args(argv)
    apis = ("v1alpha1", "v1alpha2") if args.api == "both" else (args.api,)
    report = asyncio.run(
        fuzz(
            args.endpoint,
            calls=args.calls,
            seed=args.seed,
            backend=args.backend,
            concurrency=args.concurrency,
            apis=apis,
        )
    )
    print(report.summary())
    return 1 if report.problems or report.cleanup_failures else 0


if __name__ == "__main__":
    sys.exit(main())
