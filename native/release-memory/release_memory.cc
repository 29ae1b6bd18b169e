// Gives memory back to the kernel after a burst, for the gateway's idle
// reclaim (src/ops/native-memory.ts): two things Node does not expose.
// - startReleasingHeap(): V8's moderate memory-pressure notification on the
//   calling thread's isolate: V8 starts an incremental collection that also
//   shrinks the young generation, which a burst grows to 32 MB and which
//   stays that size through any gc() call from JS. It marks in small steps
//   on the event loop and concurrently (pauses of ~10 ms); the caller waits
//   for the full collection to end.
// - releaseHeap(): the same collection at once (critical pressure),
//   blocking the thread for all of it (~0.2-0.3 s after a 3,000-stream
//   burst on 2 loaded cores): the fallback when no collection came.
// - trimMalloc(): glibc's malloc_trim(0) on a libuv pool thread, resolving
//   to true when memory went back. glibc keeps memory freed after a burst in
//   its arenas; malloc_trim hands every whole free page of every arena back.
//   With thousands of free chunks that is thousands of madvise calls (about
//   200 ms on a loaded machine): off the event loop. Without glibc (musl,
//   macOS) there is nothing to call: `mallocTrimAvailable` is false.
// - setTrimThreshold(bytes): glibc's mallopt(M_TRIM_THRESHOLD). malloc_trim
//   returns the free memory at the top of the main arena only; a thread's
//   arena gives its top back when a free() there leaves it larger than the
//   trim threshold, which glibc raises to twice the largest mmapped block
//   freed so far (up to 64 MB). After a burst, each V8 platform thread's
//   arena kept 1-3 MB of free top that no call returned. A fixed threshold
//   also stops glibc moving its mmap threshold: it stays where traffic put it.
// Node-API registration, so store worker threads can load it too; the V8
// call is the one V8 API this needs.
#include <node_api.h>
#include <v8.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#define HAS_MALLOC_TRIM true
#else
#define HAS_MALLOC_TRIM false
#endif

namespace {

napi_value StartReleasingHeap(napi_env env, napi_callback_info info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  // On the isolate's own thread V8 starts marking now (unless it is marking already) and the level is back to none.
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  return nullptr;
}

napi_value ReleaseHeap(napi_env env, napi_callback_info info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  // On the isolate's own thread the collection runs now, and the level is back to none after it.
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kNone);
  return nullptr;
}

napi_value SetTrimThreshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t bytes = -1;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 ||
      napi_get_value_int64(env, argv[0], &bytes) != napi_ok || bytes < 0 || bytes > INT32_MAX) {
    napi_throw_range_error(env, nullptr, "setTrimThreshold takes a number of bytes (0 to 2^31 - 1)");
    return nullptr;
  }
#if defined(__GLIBC__)
  bool set = mallopt(M_TRIM_THRESHOLD, static_cast<int>(bytes)) == 1;
#else
  bool set = false;
#endif
  napi_value result;
  napi_get_boolean(env, set, &result);
  return result;
}

struct Trim {
  napi_async_work work;
  napi_deferred deferred;
  bool released;
};

void TrimOnPoolThread(napi_env env, void* data) {
  Trim* trim = static_cast<Trim*>(data);
#if defined(__GLIBC__)
  trim->released = malloc_trim(0) != 0;
#else
  trim->released = false;
#endif
}

void TrimDone(napi_env env, napi_status status, void* data) {
  Trim* trim = static_cast<Trim*>(data);
  napi_value result;
  napi_get_boolean(env, status == napi_ok && trim->released, &result);
  napi_resolve_deferred(env, trim->deferred, result);
  napi_delete_async_work(env, trim->work);
  delete trim;
}

napi_value TrimMalloc(napi_env env, napi_callback_info info) {
  Trim* trim = new Trim{nullptr, nullptr, false};
  napi_value promise, name;
  if (napi_create_promise(env, &trim->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "modelgate:malloc_trim", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, nullptr, name, TrimOnPoolThread, TrimDone, trim, &trim->work) != napi_ok ||
      napi_queue_async_work(env, trim->work) != napi_ok) {
    delete trim;
    napi_throw_error(env, nullptr, "malloc_trim could not be queued");
    return nullptr;
  }
  return promise;
}

}  // namespace

NAPI_MODULE_INIT(/* env, exports */) {
  napi_value start_releasing_heap, release_heap, trim_malloc, set_trim_threshold, available;
  if (napi_create_function(env, "startReleasingHeap", NAPI_AUTO_LENGTH, StartReleasingHeap, nullptr, &start_releasing_heap) != napi_ok ||
      napi_create_function(env, "releaseHeap", NAPI_AUTO_LENGTH, ReleaseHeap, nullptr, &release_heap) != napi_ok ||
      napi_create_function(env, "trimMalloc", NAPI_AUTO_LENGTH, TrimMalloc, nullptr, &trim_malloc) != napi_ok ||
      napi_create_function(env, "setTrimThreshold", NAPI_AUTO_LENGTH, SetTrimThreshold, nullptr, &set_trim_threshold) != napi_ok ||
      napi_get_boolean(env, HAS_MALLOC_TRIM, &available) != napi_ok ||
      napi_set_named_property(env, exports, "startReleasingHeap", start_releasing_heap) != napi_ok ||
      napi_set_named_property(env, exports, "releaseHeap", release_heap) != napi_ok ||
      napi_set_named_property(env, exports, "trimMalloc", trim_malloc) != napi_ok ||
      napi_set_named_property(env, exports, "setTrimThreshold", set_trim_threshold) != napi_ok ||
      napi_set_named_property(env, exports, "mallocTrimAvailable", available) != napi_ok) {
    return nullptr;
  }
  return exports;
}
