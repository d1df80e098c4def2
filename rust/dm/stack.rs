// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Running deep work on a fresh kernel stack.
//!
//! Table loads and resumes run at the bottom of an ioctl's call chain; opening a thin pool's
//! metadata there (a few KiB of metadata objects, then dm-bufio reads through stacked
//! devices) can overrun the 16 KiB task stack. [`on_fresh_stack`] runs such work on a
//! workqueue worker and waits for it, as a scoped thread would.
//!
//! C header: [include/linux/workqueue.h](srctree/include/linux/workqueue.h)

use super::bindings;
use kernel::ffi::c_void;

struct Call<F, R> {
    f: Option<F>,
    result: Option<R>,
}

/// # Safety
///
/// - `ctx` is a `Call<F, R>` that the caller of `orion_call_on_fresh_stack` owns and does not
///   touch until that call returns.
unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(ctx: *mut c_void) {
    // SAFETY: per this function's contract, the `Call` is ours for this call.
    let call = unsafe { &mut *ctx.cast::<Call<F, R>>() };
    if let Some(f) = call.f.take() {
        call.result = Some(f());
    }
}

/// Runs `f` on a worker's fresh stack and returns its result; runs it here if this already is
/// a workqueue worker. Sleeps. `None` only if `f` could not run, which cannot happen.
pub fn on_fresh_stack<F, R>(f: F) -> Option<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let mut call = Call {
        f: Some(f),
        result: None,
    };
    let ctx: *mut Call<F, R> = &mut call;
    // SAFETY: `call` lives on this frame until the call returns, which waits for the worker
    // to finish with it; `F` and `R` are `Send`, so moving them to the worker is fine.
    unsafe { bindings::orion_call_on_fresh_stack(Some(trampoline::<F, R>), ctx.cast()) };
    call.result
}
