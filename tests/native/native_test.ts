import {
  CapacityExceededError,
  InternalError,
  InvalidArgumentError,
  NativeUnavailableError,
  PackiceError,
} from "../../core/errors.ts";
import { check, Errno, errnoError, errnoName, SystemError } from "../../native/errno.ts";
import { Linux, NATIVE_ABI_VERSION } from "../../native/ffi.ts";
import { loadNative } from "../../native/load.ts";
import type { Native } from "../../native/load.ts";
import { Mapping } from "../../native/mapping.ts";
import { openNative } from "../helpers/native.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";

const native = openNative();
const ignore = native === undefined;
const pk = native?.symbols as Native["symbols"];
const encoder = new TextEncoder();
const cString = (text: string) => encoder.encode(`${text}\0`);

function memfd(size: number): number {
  const fd = check(pk.pk_memfd_create(cString("test"), Linux.MFD_ALLOW_SEALING), "memfd_create");
  check(pk.pk_ftruncate(fd, BigInt(size)), "ftruncate");
  return fd;
}

function systemErrno(error: PackiceError): number {
  assert(error.cause instanceof SystemError, `No SystemError cause: ${error.message}`);
  return error.cause.errno;
}

Deno.test("check() turns -errno into the typed error that names it", () => {
  assertEquals(check(5, "read"), 5);
  assertEquals(check(7n, "read"), 7);
  const full = assertThrows(() => check(-Errno.ENOMEM, "mmap"), CapacityExceededError);
  assertEquals(full.message, "mmap failed: ENOMEM (12)");
  assertEquals(systemErrno(full), Errno.ENOMEM);
  assertThrows(() => check(-BigInt(Errno.ENOSPC), "fallocate"), CapacityExceededError);
  assertThrows(() => check(-Errno.EMFILE, "memfd_create"), CapacityExceededError);
  assertThrows(() => check(-Errno.EINVAL, "mmap"), InvalidArgumentError);
  assertThrows(() => check(-Errno.EBADF, "close"), InvalidArgumentError);
  const other = assertThrows(() => check(-Errno.EPERM, "mmap"), InternalError);
  assertEquals(other.message, "mmap failed: EPERM (1)");
  assertEquals(errnoError(75, "stat").message, "stat failed: errno 75 (75)");
  assertEquals(errnoName(Errno.EAGAIN), "EAGAIN");
});

Deno.test({
  name: "loadNative() returns the same library on every call",
  ignore: Deno.env.get("PACKICE_NATIVE_LIB") !== undefined,
  fn() {
    const first = loadNative();
    assert(first !== undefined);
    assert(loadNative() === first);
    assertEquals(first.symbols.pk_version(), NATIVE_ABI_VERSION);
  },
});

Deno.test({
  name: "memfd: size, seals, and no writes after F_SEAL_WRITE",
  ignore,
  fn() {
    const fd = memfd(8192);
    try {
      assertEquals(Number(pk.pk_fstat_size(fd)), 8192);
      using writer = Mapping.map(native!, fd, 8192, { writable: true });
      const view = writer.openView();
      view.set(encoder.encode("sealed bytes"));
      // A writable shared mapping keeps F_SEAL_WRITE out.
      assertEquals(pk.pk_add_seals(fd, Linux.F_SEAL_WRITE), -Errno.EBUSY);
      writer.close();
      assertEquals(view.length, 0);
      const seals = Linux.F_SEAL_WRITE | Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK |
        Linux.F_SEAL_SEAL;
      check(pk.pk_add_seals(fd, seals), "fcntl(F_ADD_SEALS)");
      assertEquals(pk.pk_get_seals(fd) & seals, seals);
      const refused = assertThrows(
        () => Mapping.map(native!, fd, 8192, { writable: true }),
        PackiceError,
      );
      assertEquals(systemErrno(refused), Errno.EPERM);
      const one = new Uint8Array([1]);
      assertEquals(Number(pk.pk_pwrite_all(fd, one, 1n, 0n)), -Errno.EPERM);
      assertEquals(pk.pk_ftruncate(fd, 0n), -Errno.EPERM);
      using reader = Mapping.map(native!, fd, 8192);
      assertEquals(new TextDecoder().decode(reader.openView().subarray(0, 12)), "sealed bytes");
    } finally {
      check(pk.pk_close(fd), "close");
    }
  },
});

Deno.test({
  name: "Mapping reuses a closed view's memory for the next view; the closed one stays detached",
  ignore,
  fn() {
    const fd = memfd(4096);
    try {
      using mapping = Mapping.map(native!, fd, 4096, { writable: true, populate: true });
      const first = mapping.openView();
      const firstBuffer = first.buffer;
      first[1] = 9;
      mapping.closeView(first);
      const second = mapping.openView();
      assertEquals([first.length, firstBuffer.byteLength, second.length, second[1]], [
        0,
        0,
        4096,
        9,
      ]);
      assert(second.buffer !== firstBuffer, "a closed view's buffer came back");
      assert(
        Deno.UnsafePointer.equals(Deno.UnsafePointer.of(second), mapping.pointer),
        "the next view is not over the mapping",
      );
      mapping.closeView(second);
      const third = mapping.openView();
      mapping.close();
      assertEquals([second.length, third.length], [0, 0]);
    } finally {
      check(pk.pk_close(fd), "close");
    }
  },
});

Deno.test({
  name: "Mapping detaches its views on closeView() and close(), and close() is idempotent",
  ignore,
  fn() {
    const fd = memfd(4096);
    try {
      const mapping = Mapping.map(native!, fd, 4096, { writable: true, populate: true });
      const first = mapping.openView();
      const second = mapping.openView();
      const part = second.subarray(10, 20);
      assertEquals([first.length, second.length, mapping.openViews], [4096, 4096, 2]);
      first[0] = 7;
      assertEquals(second[0], 7);
      mapping.closeView(first);
      assertEquals([first.length, second.length, mapping.openViews], [0, 4096, 1]);
      mapping.closeView(first);
      mapping.close();
      assertEquals([second.length, part.length, mapping.openViews], [0, 0, 0]);
      assert(mapping.closed);
      mapping.close();
      assertThrows(() => mapping.openView(), RangeError);
      using empty = Mapping.map(native!, fd, 0);
      assertEquals(empty.openView().length, 0);
    } finally {
      check(pk.pk_close(fd), "close");
    }
  },
});

Deno.test({
  name: "memfd_prepare gives a populated read-write mapping, and prepare_many stores its results",
  ignore,
  async fn() {
    const fd = new Int32Array(1);
    const pointer = new BigUint64Array(1);
    check(pk.pk_memfd_prepare(65536n, 1, fd, pointer), "memfd prepare");
    const mapping = new Mapping(native!, Deno.UnsafePointer.create(pointer[0]!), 65536, 100);
    const view = mapping.openView();
    assertEquals(view.length, 100);
    view.fill(3);
    const back = new Uint8Array(100);
    assertEquals(Number(pk.pk_pread_all(fd[0]!, back, 100n, 0n)), 100);
    assertEquals(back, new Uint8Array(100).fill(3));
    mapping.close();
    const copy = check(pk.pk_dup(fd[0]!), "dup");
    assertEquals(Number(pk.pk_fstat_size(copy)), 65536);
    check(pk.pk_close(copy), "close");
    check(pk.pk_close(fd[0]!), "close");

    // The results go to memory the library owns, which outlives the call.
    const results = pk.pk_alloc(16n)!;
    const out = new Deno.UnsafePointerView(results);
    const done = Deno.UnsafePointer.offset(results, 12)!;
    assertEquals(await pk.pk_memfd_prepare_many_nb(3, 4096n, 1, results, null, done), 3);
    assertEquals(out.getInt32(12), 3);
    for (let i = 0; i < 3; i++) {
      const made = out.getInt32(i * 4);
      assertEquals(Number(pk.pk_fstat_size(made)), 4096);
      check(pk.pk_close(made), "close");
    }
    pk.pk_free(results);
  },
});

Deno.test({
  name: "file I/O moves bytes between memfds and files without JS buffers",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    const fd = memfd(10000);
    const file = check(
      pk.pk_open(cString(`${dir}/copy`), Linux.O_RDWR | Linux.O_CREAT | Linux.O_TRUNC, 0o600),
      "open",
    );
    try {
      const bytes = crypto.getRandomValues(new Uint8Array(10000));
      assertEquals(Number(pk.pk_pwrite_all(fd, bytes, 10000n, 0n)), 10000);
      // memfd to a regular file: another file system, so the buffered fallback.
      assertEquals(Number(await pk.pk_copy_file_range_all_nb(fd, 0n, file, 0n, 10000n)), 10000);
      assertEquals(await Deno.readFile(`${dir}/copy`), bytes);
      // A range past the end stops at the end of the file.
      assertEquals(Number(await pk.pk_copy_file_range_all_nb(file, 9000n, fd, 0n, 5000n)), 1000);
      const into = memfd(10000);
      using mapping = Mapping.map(native!, into, 10000, { writable: true });
      assertEquals(Number(pk.pk_pread_all(file, mapping.openView(), 10000n, 0n)), 10000);
      assertEquals(mapping.openView(), bytes);
      mapping.close();
      check(pk.pk_close(into), "close");
    } finally {
      check(pk.pk_close(file), "close");
      check(pk.pk_close(fd), "close");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "pk_hash64 matches the XXH64 test vectors",
  ignore,
  fn() {
    const hash = (text: string, seed = 0n) => {
      const bytes = encoder.encode(text);
      return BigInt(pk.pk_hash64(bytes, BigInt(bytes.length), seed));
    };
    assertEquals(hash(""), 0xEF46DB3751D8E999n);
    assertEquals(hash("a"), 0xD24EC4F1A98C6E5Bn);
    assertEquals(hash("abc"), 0x44BC2CF5AD770999n);
    assertEquals(hash("Nobody inspects the spammish repetition"), 0xFBCEA83C8A378BF1n);
    // A subarray hashes its own bytes, not its buffer's.
    const padded = encoder.encode("xxabcxx");
    assertEquals(BigInt(pk.pk_hash64(padded.subarray(2, 5), 3n, 0n)), 0x44BC2CF5AD770999n);
  },
});

/** A listening socket and one accepted connection, in a temporary directory. */
function socketPair(): { client: number; server: number; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/test.sock`;
  const listener = check(pk.pk_uds_listen(cString(path), 8), "listen");
  const client = check(pk.pk_uds_connect(cString(path)), "connect");
  const server = check(pk.pk_accept(listener), "accept");
  assertEquals(pk.pk_accept(listener), -Errno.EAGAIN);
  check(pk.pk_close(listener), "close");
  Deno.removeSync(dir, { recursive: true });
  return {
    client,
    server,
    [Symbol.dispose]() {
      pk.pk_close(client);
      pk.pk_close(server);
    },
  };
}

Deno.test({
  name: "sendmsg() passes a memfd with SCM_RIGHTS and the received fd maps the same bytes",
  ignore,
  fn() {
    using pair = socketPair();
    const fd = memfd(4096);
    check(pk.pk_pwrite_all(fd, encoder.encode("shared"), 6n, 0n), "pwrite");
    const message = encoder.encode("take this");
    const sent = pk.pk_sendmsg(pair.client, message, BigInt(message.length), Int32Array.of(fd), 1);
    assertEquals(Number(sent), message.length);
    check(pk.pk_close(fd), "close");

    const buffer = new Uint8Array(64);
    const fds = new Int32Array(4);
    const out = new Int32Array(2);
    const got = pk.pk_recvmsg(
      pair.server,
      buffer,
      64n,
      fds,
      4,
      out.subarray(0, 1),
      out.subarray(1),
    );
    assertEquals(Number(got), message.length);
    assertEquals(buffer.subarray(0, message.length), message);
    assertEquals([out[0], out[1]], [1, 0]);
    const received = fds[0]!;
    using mapping = Mapping.map(native!, received, 4096);
    assertEquals(new TextDecoder().decode(mapping.openView().subarray(0, 6)), "shared");
    mapping.close();
    check(pk.pk_close(received), "close");
  },
});

Deno.test({
  name: "recvmsg() reports MSG_TRUNC and MSG_CTRUNC, closes extra fds, and EAGAIN when empty",
  ignore,
  fn() {
    using pair = socketPair();
    const buffer = new Uint8Array(4);
    const fds = new Int32Array(1);
    const out = new Int32Array(2);
    const receive = () =>
      Number(pk.pk_recvmsg(pair.server, buffer, 4n, fds, 1, out.subarray(0, 1), out.subarray(1)));
    assertEquals(receive(), -Errno.EAGAIN);
    const a = memfd(1);
    const b = memfd(1);
    const message = encoder.encode("longer than four");
    check(
      pk.pk_sendmsg(pair.client, message, BigInt(message.length), Int32Array.of(a, b), 2),
      "sendmsg",
    );
    pk.pk_close(a);
    pk.pk_close(b);
    assertEquals(receive(), 4);
    assertEquals(out[0], 1);
    assert(out[1]! & Linux.MSG_TRUNC);
    assert(out[1]! & Linux.MSG_CTRUNC);
    check(pk.pk_close(fds[0]!), "close");
    assertEquals(receive(), -Errno.EAGAIN);
  },
});

Deno.test({
  name: "epoll sees a readable socket",
  ignore,
  fn() {
    using pair = socketPair();
    const epfd = check(pk.pk_epoll_create(), "epoll_create");
    try {
      check(
        pk.pk_epoll_ctl(epfd, Linux.EPOLL_CTL_ADD, pair.server, Linux.EPOLLIN, 42n),
        "epoll_ctl",
      );
      const data = new BigUint64Array(8);
      const events = new Uint32Array(8);
      assertEquals(pk.pk_epoll_wait(epfd, data, events, 8, 0), 0);
      check(pk.pk_sendmsg(pair.client, encoder.encode("x"), 1n, null, 0), "sendmsg");
      assertEquals(pk.pk_epoll_wait(epfd, data, events, 8, 1000), 1);
      assertEquals(data[0], 42n);
      assert(events[0]! & Linux.EPOLLIN);
      check(pk.pk_epoll_ctl(epfd, Linux.EPOLL_CTL_DEL, pair.server, 0, 0n), "epoll_ctl");
      assertEquals(pk.pk_epoll_wait(epfd, data, events, 8, 0), 0);
    } finally {
      pk.pk_close(epfd);
    }
  },
});

/** Runs `code` in a fresh Deno with `env`, from a copy of the native sources without a build. */
async function runLoader(code: string, env: Record<string, string>) {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(`${root}/native`);
  await Deno.mkdir(`${root}/core`);
  for (
    const file of [
      "ffi.ts",
      "load.ts",
      "call_watch.ts",
      "build.ts",
      "write_through_temporary.ts",
      "packice.c",
    ]
  ) {
    await Deno.copyFile(new URL(`../../native/${file}`, import.meta.url), `${root}/native/${file}`);
  }
  await Deno.copyFile(new URL("../../core/errors.ts", import.meta.url), `${root}/core/errors.ts`);
  await Deno.copyFile(new URL("../../deno.json", import.meta.url), `${root}/deno.json`);
  await Deno.writeTextFile(`${root}/main.ts`, code);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${root}/main.ts`],
    cwd: root,
    env: { XDG_CACHE_HOME: `${root}/cache`, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(root, { recursive: true });
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

const loadAndPrint = `
import { ensureNative, loadNative } from "./native/load.ts";
const native = loadNative();
console.log(native ? native.path.replace(Deno.cwd(), ".") : "none");
console.log((await ensureNative()) === native);
`;

Deno.test({
  name: "loader builds into the per-version cache when there is no local build",
  ignore: ignore || Deno.env.get("PACKICE_NATIVE_LIB") !== undefined,
  async fn() {
    const { version } = JSON.parse(
      await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
    );
    const { code, stdout, stderr } = await runLoader(loadAndPrint, {});
    assertEquals(code, 0, stderr);
    assertEquals(stdout, `./cache/packice/${version}/libpackice.so\ntrue\n`, stderr);
    assertEquals(stderr, "");
  },
});

Deno.test({
  name: "loader warns once and falls back without a C compiler or when turned off",
  // A library named in PACKICE_NATIVE_LIB (the ASAN run's) loads without a compiler.
  ignore: ignore || Deno.env.get("PACKICE_NATIVE_LIB") !== undefined,
  async fn() {
    for (const env of [{ PATH: "/nonexistent" }, { PACKICE_NATIVE_LIB: "none" }]) {
      const { code, stdout, stderr } = await runLoader(loadAndPrint, env);
      assertEquals(code, 0, stderr);
      assertEquals(stdout, "none\ntrue\n");
      const warnings = stderr.split("\n").filter((line) => line.includes("zero-copy"));
      assertEquals(warnings.length, 1, stderr);
      assert(warnings[0]!.includes("unavailable"));
    }
  },
});

Deno.test({
  name: "loader throws NativeUnavailableError for a PACKICE_NATIVE_LIB that does not load",
  ignore,
  async fn() {
    const { code, stdout, stderr } = await runLoader(
      `import { loadNative } from "./native/load.ts";
try { loadNative(); } catch (error) { console.log(error.name, error.code); }`,
      { PACKICE_NATIVE_LIB: "/nonexistent/libpackice.so" },
    );
    assertEquals(code, 0, stderr);
    assertEquals(stdout, `${NativeUnavailableError.name} NATIVE_UNAVAILABLE\n`);
  },
});

Deno.test({
  name: "a mapping detaches every view still open when it closes, few or many",
  ignore,
  fn() {
    for (const count of [4, 40]) {
      const fd = memfd(4096);
      try {
        const mapping = Mapping.map(native!, fd, 4096);
        const views = Array.from({ length: count }, () => mapping.openView());
        assertEquals(mapping.openViews, count);
        // Closed out of order, twice over: each counts once, and stays detached.
        for (const at of [1, 0, count - 1]) {
          mapping.closeView(views[at]!);
          mapping.closeView(views[at]!);
        }
        assertEquals(mapping.openViews, count - 3);
        assertEquals([views[0]!.length, views[1]!.length, views[2]!.length], [0, 0, 4096]);
        const reopened = mapping.openView();
        assertEquals(reopened.length, 4096);
        mapping.close();
        assertEquals(mapping.openViews, 0);
        assert(views.every((view) => view.length === 0), "a view outlived its mapping");
        assertEquals(reopened.length, 0);
      } finally {
        pk.pk_close(fd);
      }
    }
  },
});
