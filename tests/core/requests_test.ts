import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { InvalidArgumentError } from "../../mod.ts";
import {
  acquireRequest,
  deleteRequest,
  discardRequest,
  getRequest,
  hasRequest,
  putRequest,
  releaseRequest,
  renewRequest,
  sealRequest,
  statRequest,
} from "../../core/requests.ts";

function refuses(fn: () => unknown, starts: string): void {
  const error = assertThrows(fn, InvalidArgumentError);
  assert(error.message.startsWith(starts), `${starts}: ${error.message}`);
}

Deno.test("acquireRequest() returns a typed copy of the fields it knows", () => {
  const body = {
    objectId: "a",
    access: "CREATE",
    size: [1, 2],
    ttl: 5,
    meta: { k: 1 },
    memfds: [3],
  };
  const request = acquireRequest(body);
  assertEquals(request, { objectId: "a", access: "CREATE", size: [1, 2], ttl: 5, meta: { k: 1 } });
  assert(request.size !== body.size, "the sizes are a copy");
  assertEquals(acquireRequest({ access: "CREATE", size: 0 }), { access: "CREATE", size: 0 });
  assertEquals(acquireRequest({ objectId: "r", access: "READ" }), {
    objectId: "r",
    access: "READ",
  });
});

Deno.test("acquireRequest() names the wrong field and what it expects", () => {
  refuses(() => acquireRequest(null), "Invalid ACQUIRE request: expected an object, got null");
  refuses(() => acquireRequest([]), "Invalid ACQUIRE request: expected an object, got an array");
  refuses(() => acquireRequest({ access: "STEAL" }), 'Invalid access: expected "READ", "CREATE"');
  for (const size of [null, "5", {}, [], [1, "2"], -1, 1.5, true]) {
    refuses(() => acquireRequest({ access: "CREATE", size }), "Invalid size");
  }
  refuses(() => acquireRequest({ access: "CREATE" }), "Invalid size: CREATE needs one");
  refuses(() => acquireRequest({ access: "CREATE", size: new Array(254).fill(1) }), "Invalid size");
  refuses(() => acquireRequest({ access: "READ" }), "Invalid object id: READ needs one");
  refuses(() => acquireRequest({ access: "READ", objectId: 5 }), "Invalid object id");
  refuses(() => acquireRequest({ access: "READ", objectId: "a/b" }), "Invalid object id");
  refuses(() => acquireRequest({ access: "READ", objectId: "a", ttl: "5" }), "Invalid ttl");
  refuses(() => acquireRequest({ access: "READ", objectId: "a", ttl: 0 }), "Invalid ttl");
  refuses(() => acquireRequest({ access: "CREATE", size: 1, meta: [] }), "Invalid meta");
  const long = assertThrows(
    () => acquireRequest({ access: "x".repeat(1000) }),
    InvalidArgumentError,
  );
  assert(long.message.length < 200, "a message never repeats a long value whole");
});

Deno.test("the lease and object id requests check their one field", () => {
  for (const check of [sealRequest, discardRequest, releaseRequest]) {
    assertEquals(check("lease-1"), "lease-1");
    refuses(() => check(undefined), "Invalid lease id");
    refuses(() => check(""), "Invalid lease id");
    refuses(() => check("x".repeat(256)), "Invalid lease id");
  }
  for (const check of [getRequest, statRequest, hasRequest, deleteRequest]) {
    assertEquals(check("id"), "id");
    refuses(() => check(7), "Invalid object id");
    refuses(() => check(".."), "Invalid object id");
  }
  assertEquals(renewRequest({ leaseId: "l" }), { leaseId: "l" });
  assertEquals(renewRequest({ leaseId: "l", ttl: 9 }), { leaseId: "l", ttl: 9 });
  refuses(() => renewRequest({ leaseId: "l", ttl: {} }), "Invalid ttl");
  refuses(() => renewRequest("l"), "Invalid RENEW request");
});

Deno.test("putRequest() takes {} without a copy and checks each field", () => {
  assert(putRequest({}) === putRequest({}), "one shared object for a put of no options");
  assertEquals(putRequest({ id: "p", ttl: 3, meta: {}, other: 1 }), { id: "p", ttl: 3, meta: {} });
  refuses(() => putRequest({ id: 1 }), "Invalid object id");
  refuses(() => putRequest({ meta: "m" }), "Invalid meta");
  refuses(() => putRequest({ ttl: -1 }), "Invalid ttl");
  refuses(() => putRequest(undefined), "Invalid PUT request");
});
