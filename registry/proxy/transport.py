"""How commands reach nftables: the ``nft`` program, or its library in this process.

The plan's scripts are the same either way; what differs is what each command costs.
``nft`` reads every chain and set of the table (with the elements of the maps its rules
name) before each command, so with 10,000 services a one-element change cost about
9 ms through the program and 2.5 ms through one libnftables context kept open, which
keeps that cache between our own transactions and reads it again only when someone else
changed the ruleset (measured 2026-12-05; ``python -m benchmarks.proxy``). So the library
is used where it loads (Debian's ``libnftables1``, which ``nftables`` depends on), the
program elsewhere.

A libnftables context is not thread-safe and its calls block: they run one at a time on
a thread of their own.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from concurrent.futures import ThreadPoolExecutor
from typing import Final, Protocol

from registry.errors import ServerError

__all__ = ["Command", "Library", "NftablesError", "Transport", "open_transport"]

_JSON: Final = 1 << 4  # NFT_CTX_OUTPUT_JSON
_MAX_OUTPUT: Final = 512 * 1024 * 1024  # bytes of output we are willing to read


class NftablesError(ServerError):
    """nftables refused or failed; the message carries its first line of complaint."""


def _complaint(what: str, error: str) -> NftablesError:
    first = next((line for line in error.splitlines() if line.strip()), "failed")
    return NftablesError(f"nft {what}: {first[:300]}")


class Transport(Protocol):
    async def run(self, commands: str, *, json: bool = False) -> str:
        """Run ``commands`` (an nft script) as one transaction; what they printed."""
        ...

    def close(self) -> None: ...


class Command:
    """The ``nft`` program, one process per transaction."""

    def __init__(self, nft: str = "nft") -> None:
        self._nft = nft

    async def run(self, commands: str, *, json: bool = False) -> str:
        # (``nft -j -f -`` prints no JSON: a listing is given as arguments.)
        args = [self._nft, "-j", *commands.split()] if json else [self._nft, "-f", "-"]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(commands.encode())
        if proc.returncode != 0:
            raise _complaint(commands.split("\n", 1)[0][:60], err.decode(errors="replace"))
        return out[:_MAX_OUTPUT].decode(errors="replace")

    def close(self) -> None:
        pass


class Library:
    """One libnftables context, kept open, on a thread of its own."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_get_flags.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        for getter in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, getter).argtypes = [ctypes.c_void_p]
            getattr(lib, getter).restype = ctypes.c_void_p  # read with a bound
        self._ctx = lib.nft_ctx_new(0)
        if not self._ctx:
            raise NftablesError("nft: libnftables could not make a context")
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._flags = lib.nft_ctx_output_get_flags(self._ctx)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="libnftables")

    @classmethod
    def load(cls) -> Library | None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            return cls(ctypes.CDLL(name))
        except (OSError, AttributeError, NftablesError):
            return None

    async def run(self, commands: str, *, json: bool = False) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, commands, json)

    def _run(self, commands: str, json: bool) -> str:
        lib, ctx = self._lib, self._ctx
        lib.nft_ctx_output_set_flags(ctx, self._flags | _JSON if json else self._flags)
        rc = lib.nft_run_cmd_from_buffer(ctx, commands.encode())
        out = _read(lib.nft_ctx_get_output_buffer(ctx))
        err = _read(lib.nft_ctx_get_error_buffer(ctx))
        if rc != 0:
            raise _complaint(commands.split("\n", 1)[0][:60], err)
        return out

    def close(self) -> None:
        if self._ctx:
            self._thread.submit(self._lib.nft_ctx_free, self._ctx).result()
            self._ctx = None
        self._thread.shutdown(wait=False)


def _read(pointer: int | None) -> str:
    if not pointer:
        return ""
    return ctypes.string_at(pointer)[:_MAX_OUTPUT].decode(errors="replace")


def open_transport(prefer: str = "library") -> Transport:
    """libnftables if asked for and it loads, else the ``nft`` program."""
    if prefer == "library":
        library = Library.load()
        if library is not None:
            return library
    return Command()
