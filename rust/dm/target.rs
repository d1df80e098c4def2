// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The [`Target`] trait a device-mapper target implements, and the C `target_type` built from it.
//!
//! Optional callbacks are installed in the C table only when the implementer provides them
//! (`T::HAS_X` from `#[vtable]`), so dm core sees NULL exactly as it would for a C target.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)

use super::{
    args::Args,
    bindings,
    bio::{Bio, BlkStatus, MapBio, OwnedBio},
    dev::{BlockDevice, Dev},
    limits::QueueLimits,
    status::StatusWriter,
};
use core::{marker::PhantomData, ptr::NonNull, sync::atomic::AtomicU64};
use kernel::{
    error::{to_result, Error},
    ffi::{c_char, c_int, c_uint, c_void},
    prelude::*,
    types::{ForeignOwnable, Opaque},
};

/// The private data of a target of type `T`, as borrowed in a callback.
pub type Borrowed<'a, T> = <<T as Target>::Private as ForeignOwnable>::Borrowed<'a>;

/// A constructor failure: the errno returned to dm core and the message stored in `ti->error`.
#[derive(Clone, Copy, Debug)]
pub struct CtrError {
    /// The error returned from `ctr` (usually `EINVAL`).
    pub err: Error,
    /// What `dmsetup` shows the user; names the bad argument.
    pub msg: &'static CStr,
}

impl CtrError {
    /// A constructor error with an explicit errno.
    pub const fn new(err: Error, msg: &'static CStr) -> Self {
        Self { err, msg }
    }

    /// An invalid-argument error (`EINVAL`).
    pub const fn inval(msg: &'static CStr) -> Self {
        Self { err: EINVAL, msg }
    }

    /// An allocation failure (`ENOMEM`).
    pub const fn nomem(msg: &'static CStr) -> Self {
        Self { err: ENOMEM, msg }
    }
}

/// What `map` tells dm core to do with a bio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapResult {
    /// The bio was remapped to a device and sector; dm core submits it.
    Remapped,
    /// The bio needs no I/O here and completes now with success.
    Done,
    /// The bio fails with an I/O error.
    Kill,
    /// dm core requeues the bio and calls `map` again later.
    Requeue,
    /// Like `Requeue`, after a delay.
    DelayRequeue,
    /// The target takes the bio: dm core hands it to [`Target::defer`] as an [`OwnedBio`].
    Defer,
}

/// What `end_io` tells dm core about a completed bio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndIoResult {
    /// The bio is complete (with the status as left in `end_io`).
    Done,
    /// The target keeps the bio and completes it later.
    Incomplete,
    /// dm core requeues the bio.
    Requeue,
    /// dm core requeues the bio after a delay.
    DelayRequeue,
    /// The target keeps the bio: dm core hands it to [`Target::end_io_defer`] as an
    /// [`OwnedBio`] (with its completion status), to be ended later.
    Defer,
}

/// Which status `dmsetup` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusType {
    /// `dmsetup status`: runtime state.
    Info,
    /// `dmsetup table`: the constructor line.
    Table,
    /// The IMA measurement string (`key=value,...;`).
    Ima,
}

impl StatusType {
    fn from_c(t: bindings::status_type_t) -> Option<Self> {
        match t {
            bindings::status_type_t_STATUSTYPE_INFO => Some(Self::Info),
            bindings::status_type_t_STATUSTYPE_TABLE => Some(Self::Table),
            bindings::status_type_t_STATUSTYPE_IMA => Some(Self::Ima),
            _ => None,
        }
    }
}

/// Where `prepare_ioctl` sends ioctls issued on the dm device.
#[derive(Clone, Copy)]
pub struct IoctlPassthrough<'a> {
    /// The device that receives the ioctl.
    pub bdev: BlockDevice<'a>,
    /// The target maps the whole of `bdev` one to one; otherwise dm core restricts the ioctls
    /// that may pass (a partial mapping must not let a user reach the rest of the device).
    pub whole_device: bool,
}

/// Target feature flags (`DM_TARGET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features(u64);

impl Features {
    /// No feature.
    pub const NONE: Self = Self(0);
    /// Only one target of this type in a table.
    pub const SINGLETON: Self = Self(bindings::DM_TARGET_SINGLETON as u64);
    /// The target does not support read-only devices.
    pub const ALWAYS_WRITEABLE: Self = Self(bindings::DM_TARGET_ALWAYS_WRITEABLE as u64);
    /// A device with this target may never switch to another target type.
    pub const IMMUTABLE: Self = Self(bindings::DM_TARGET_IMMUTABLE as u64);
    /// Integrity payloads pass through to the lower device.
    pub const PASSES_INTEGRITY: Self = Self(bindings::DM_TARGET_PASSES_INTEGRITY as u64);
    /// `map` never blocks, so REQ_NOWAIT bios may be sent.
    pub const NOWAIT: Self = Self(bindings::DM_TARGET_NOWAIT as u64);
    /// Inline-encryption contexts pass through to the lower device.
    pub const PASSES_CRYPTO: Self = Self(bindings::DM_TARGET_PASSES_CRYPTO as u64);

    /// Both sets of features.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A device-mapper target type.
///
/// dm core calls `ctr` for each table line of this type; the returned private data lives in
/// `ti->private` until dm core destroys the target, when it is dropped (the C `dtr`). Everything
/// the private data owns, such as [`Dev`]s and work items, must be released by that drop: a
/// target whose private data is an `Arc` must drop every clone before its destructor returns.
#[vtable]
pub trait Target: Sized {
    /// Per-target state, stored in `ti->private`.
    type Private: ForeignOwnable + Send + Sync;

    /// The target name, before the module's prefix.
    const NAME: &'static CStr;
    /// The name used after a prefix when the prefixed [`Self::NAME`] would not fit dm's
    /// 15-byte type names (`snapshot-origin` beside C's is `orion-s-origin`).
    const SHORT_NAME: &'static CStr = Self::NAME;
    /// The target version `[major, minor, patch]` shown by `dmsetup targets`.
    const VERSION: [u32; 3];

    /// Whether `map` records every bio as it sees it, so that a completed bio can be sent
    /// again with [`TargetRef::restore_bio`] (a mirror retries a failed read on another leg).
    const RECORDS_BIOS: bool = false;
    /// `DM_TARGET_*` features.
    const FEATURES: Features = Features::NONE;

    /// Builds a target from its table arguments.
    fn ctr(ti: &mut Constructor<'_>, args: Args<'_>) -> Result<Self::Private, CtrError>;

    /// Maps a bio. Runs in the submitter's context: it must not sleep.
    fn map(this: Borrowed<'_, Self>, ti: &TargetRef, bio: &MapBio) -> MapResult;

    /// Takes a bio for which `map` returned [`MapResult::Defer`]. Runs in `map`'s context,
    /// just after it, where dm core lets a target sleep (dm-snap takes its lock and starts
    /// copies there); bios it submits are only queued until dm core's submission returns, so
    /// it must never wait for their completion.
    fn defer(_this: Borrowed<'_, Self>, _ti: &TargetRef, _bio: OwnedBio) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Sees a bio when it completes.
    fn end_io(
        _this: Borrowed<'_, Self>,
        _ti: &TargetRef,
        _bio: &Bio,
        _status: &mut BlkStatus,
    ) -> EndIoResult {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Takes a completed bio for which `end_io` returned [`EndIoResult::Defer`]. Runs in
    /// `end_io`'s context (it must not sleep). When the target later ends the bio, `end_io`
    /// sees it again.
    fn end_io_defer(_this: Borrowed<'_, Self>, _ti: &TargetRef, _bio: OwnedBio) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes `dmsetup status`, `dmsetup table` or the IMA string.
    fn status(
        _this: Borrowed<'_, Self>,
        _ti: &TargetRef,
        _kind: StatusType,
        _flags: u32,
        _out: &mut StatusWriter<'_>,
    ) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Handles `dmsetup message`; text written to `out` is returned to the user.
    fn message(
        _this: Borrowed<'_, Self>,
        _ti: &TargetRef,
        _args: Args<'_>,
        _out: &mut StatusWriter<'_>,
    ) -> Result {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Reports every underlying device and the area of it that the target uses.
    fn iterate_devices(
        _this: Borrowed<'_, Self>,
        _ti: &TargetRef,
        _visitor: &mut DeviceVisitor<'_>,
    ) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Adjusts the queue limits dm core computed from the underlying devices.
    fn io_hints(_this: Borrowed<'_, Self>, _ti: &TargetRef, _limits: &mut QueueLimits) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Called before the device suspends, while I/O may still be in flight.
    fn presuspend(_this: Borrowed<'_, Self>, _ti: &TargetRef) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Called when a suspend fails after `presuspend` ran: undoes what it did.
    fn presuspend_undo(_this: Borrowed<'_, Self>, _ti: &TargetRef) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Called after the device has suspended and all I/O has completed.
    fn postsuspend(_this: Borrowed<'_, Self>, _ti: &TargetRef) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Called before the device resumes; an error aborts the resume.
    fn preresume(_this: Borrowed<'_, Self>, _ti: &TargetRef) -> Result {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Called when the device resumes.
    fn resume(_this: Borrowed<'_, Self>, _ti: &TargetRef) {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Chooses the device that ioctls on the dm device are passed to.
    fn prepare_ioctl<'a>(
        _this: Borrowed<'a, Self>,
        _ti: &TargetRef,
    ) -> Result<IoctlPassthrough<'a>> {
        kernel::build_error(kernel::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A target under construction: what `ctr` may read and configure.
///
/// # Invariants
///
/// `ti` points to the `dm_target` that dm core is constructing; it is valid for `'a` and only
/// the constructor accesses it during that time.
pub struct Constructor<'a> {
    ti: NonNull<bindings::dm_target>,
    /// Devices this target opened read-only: opening one again with a wider mode would
    /// make dm core replace (and free) its `dm_dev` under the first [`Dev`].
    read_only: [core::cell::Cell<u32>; 4],
    read_only_n: core::cell::Cell<usize>,
    _p: PhantomData<&'a mut bindings::dm_target>,
}

impl Constructor<'_> {
    /// The first sector of the dm device that this target covers.
    pub fn begin(&self) -> u64 {
        // SAFETY: `ti` is valid by the type invariant.
        unsafe { (*self.ti.as_ptr()).begin }
    }

    /// The number of sectors this target covers.
    pub fn len(&self) -> u64 {
        // SAFETY: `ti` is valid by the type invariant.
        unsafe { (*self.ti.as_ptr()).len }
    }

    /// Whether the target covers no sector (dm core never builds such a target).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device number of a device named by path or `major:minor`, without opening it.
    ///
    /// (`get_device` refuses a device the target opened read-only; a target that wants its
    /// own message for that case compares device numbers first.)
    pub fn device_number(&self, path: &CStr) -> Result<u32> {
        let mut dev: bindings::dev_t = 0;
        // SAFETY: `path` is NUL-terminated and `dev` is a valid out pointer.
        to_result(unsafe { bindings::dm_devt_from_path(path.as_char_ptr(), &mut dev) })?;
        Ok(dev)
    }

    /// Opens a device named by path or `major:minor`, with the table's mode. Fails with
    /// `EBUSY` for a device this target already opened read-only (see `read_only`).
    pub fn get_device(&self, path: &CStr) -> Result<Dev> {
        let n = self.read_only_n.get();
        if n > 0 {
            let devt = self.device_number(path)?;
            if self.read_only.iter().take(n).any(|d| d.get() == devt) {
                return Err(EBUSY);
            }
        }
        let ti = self.ti.as_ptr();
        let mut dev: *mut bindings::dm_dev = core::ptr::null_mut();
        // SAFETY: `ti` is valid by the type invariant, and its table is set during `ctr`.
        let mode = unsafe { bindings::dm_table_get_mode((*ti).table) };
        // SAFETY: `ti` is valid, `path` is NUL-terminated and `dev` is a valid out pointer.
        to_result(unsafe { bindings::dm_get_device(ti, path.as_char_ptr(), mode, &mut dev) })?;
        let dev = NonNull::new(dev).ok_or(ENODEV)?;
        // SAFETY: `dm_get_device` succeeded, so `dev` is a device reference of `ti`.
        Ok(unsafe { Dev::from_raw(self.ti, dev) })
    }

    /// Opens a device named by path or `major:minor` for reading only (at most four per
    /// target, `EMFILE` beyond).
    pub fn get_device_read_only(&self, path: &CStr) -> Result<Dev> {
        let n = self.read_only_n.get();
        let slot = self.read_only.get(n).ok_or(EMFILE)?;
        let ti = self.ti.as_ptr();
        let mut dev: *mut bindings::dm_dev = core::ptr::null_mut();
        // BLK_OPEN_READ (a cast in C, which bindgen does not evaluate).
        let mode: bindings::blk_mode_t = 1;
        // SAFETY: `ti` is valid, `path` is NUL-terminated and `dev` is a valid out pointer.
        to_result(unsafe { bindings::dm_get_device(ti, path.as_char_ptr(), mode, &mut dev) })?;
        let dev = NonNull::new(dev).ok_or(ENODEV)?;
        // SAFETY: `dm_get_device` succeeded, so `dev` is a device reference of `ti`.
        let dev = unsafe { Dev::from_raw(self.ti, dev) };
        slot.set(dev.dev_number());
        self.read_only_n.set(n + 1);
        Ok(dev)
    }

    /// Sets how many empty flush bios dm core sends to this target for one flush.
    pub fn set_num_flush_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).num_flush_bios = n };
    }

    /// Sets how many discard bios dm core sends to this target for one discard.
    pub fn set_num_discard_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).num_discard_bios = n };
    }

    /// Sets how many secure-erase bios dm core sends to this target for one secure erase.
    pub fn set_num_secure_erase_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).num_secure_erase_bios = n };
    }

    /// Sets how many write-zeroes bios dm core sends to this target for one write-zeroes.
    pub fn set_num_write_zeroes_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).num_write_zeroes_bios = n };
    }

    /// Lets dm core send flushes straight to the devices instead of through `map`.
    pub fn set_flush_bypasses_map(&mut self, on: bool) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).set_flush_bypasses_map(on) };
    }

    /// Makes dm core split bios so that none crosses a multiple of `len` sectors.
    pub fn set_max_io_len(&mut self, len: u64) -> Result {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        to_result(unsafe { bindings::dm_set_target_max_io_len(self.ti.as_ptr(), len) })
    }

    /// Reserves `size` bytes of per-bio data for the target (see `Bio::per_bio_data`).
    pub fn set_per_io_data_size(&mut self, size: u32) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).per_io_data_size = size };
    }

    /// Declares that the target handles flushes itself: the mapped device advertises a
    /// volatile write cache (so flush and FUA bios reach the target) even when no underlying
    /// device has one.
    pub fn set_flush_supported(&mut self) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).set_flush_supported(true) };
    }

    /// Declares that the target handles discards itself (the mapped device advertises them
    /// whatever the underlying devices do); `whole_range`: dm core splits them only at
    /// `max_discard_sectors`, not at the target's I/O boundary (`max_discard_granularity`).
    pub fn set_discards_supported(&mut self, whole_range: bool) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe {
            (*self.ti.as_ptr()).set_discards_supported(true);
            (*self.ti.as_ptr()).set_max_discard_granularity(whole_range);
        }
    }

    /// Limits in-flight swap bios (the target may need memory to map them).
    pub fn set_limit_swap_bios(&mut self) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).set_limit_swap_bios(true) };
    }

    /// Declares that the target submits deferred bios with `dm_submit_bio_remap`.
    pub fn set_accounts_remapped_io(&mut self) {
        // SAFETY: `ti` is valid and exclusively ours during construction.
        unsafe { (*self.ti.as_ptr()).set_accounts_remapped_io(true) };
    }

    /// The device number of the mapped device whose table this target belongs to.
    pub fn md_dev_number(&self) -> u32 {
        // SAFETY: `ti` is valid and its table (and the table's device) exist during `ctr`.
        unsafe { bindings::orion_target_md_devt(self.ti.as_ptr()) }
    }

    /// The mapped device this target belongs to, for internal suspends; the value must not
    /// outlive the target (keep it in the private data, or take it out in its `Drop`).
    pub fn mapped_device(&self) -> Option<super::internal_suspend::MappedDevice> {
        // SAFETY: `ti` is under construction; the value's lifetime is documented above and
        // is the caller's to keep (as for `TableEvent`).
        unsafe { super::internal_suspend::MappedDevice::new(self.ti) }
    }

    /// Creates a handle that raises a table event for this target (see `TableEvent`).
    pub fn table_event(&self) -> Result<super::event::TableEvent> {
        // SAFETY: `ti` is the target being constructed; the event lives in its private data.
        unsafe { super::event::TableEvent::new(self.ti) }
    }
}

/// A live target, as seen by the callbacks after construction.
///
/// # Invariants
///
/// Wraps a `dm_target` that dm core constructed successfully and has not destroyed; its
/// fields other than `private` are not modified while callbacks run.
#[repr(transparent)]
pub struct TargetRef(Opaque<bindings::dm_target>);

impl TargetRef {
    /// # Safety
    ///
    /// - `ti` points to a constructed `dm_target` that outlives `'a`.
    unsafe fn from_raw<'a>(ti: *mut bindings::dm_target) -> &'a Self {
        // SAFETY: `TargetRef` is a transparent wrapper; validity is the caller's promise.
        unsafe { &*ti.cast::<Self>() }
    }

    fn raw(&self) -> *mut bindings::dm_target {
        self.0.get()
    }

    /// The first sector of the dm device that this target covers.
    pub fn begin(&self) -> u64 {
        // SAFETY: the target is live by the type invariant; `begin` is immutable.
        unsafe { (*self.raw()).begin }
    }

    /// The number of sectors this target covers.
    pub fn len(&self) -> u64 {
        // SAFETY: the target is live by the type invariant; `len` is immutable.
        unsafe { (*self.raw()).len }
    }

    /// Whether the target covers no sector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The registered name of the target type (with the module's prefix).
    pub fn type_name(&self) -> &CStr {
        // SAFETY: a live target's type is registered and its name is a NUL-terminated string
        // that lives as long as the registration, which outlives every target of the type.
        unsafe { CStr::from_char_ptr((*(*self.raw()).type_).name) }
    }

    /// The 8-byte per-bio tag of `bio`, a bio of this target, if the target has one (targets
    /// that defer bios always do).
    pub fn bio_tag<'a>(&self, bio: &'a Bio) -> Option<&'a AtomicU64> {
        // SAFETY: the target is live by the type invariant; `per_io_data_size` is fixed after
        // construction.
        if unsafe { (*self.raw()).per_io_data_size } < 8 {
            return None;
        }
        // SAFETY: a bio of this target has `per_io_data_size` >= 8 bytes of per-bio data,
        // aligned by dm core, alive as long as the bio.
        Some(unsafe { AtomicU64::from_ptr(super::bio::tag_ptr(bio.as_raw())) })
    }

    /// Puts `bio`, a completed bio of this target, back as `map` saw it (device, sector,
    /// size, status cleared) so that it can be remapped and submitted again. `false` if the
    /// target does not record its bios ([`Target::RECORDS_BIOS`]).
    pub fn restore_bio(&self, bio: &OwnedBio) -> bool {
        // SAFETY: a constant.
        let need = 8 + unsafe { bindings::orion_bio_record_bytes() };
        // SAFETY: the target is live by the type invariant; `per_io_data_size` is fixed after
        // construction.
        if unsafe { (*self.raw()).per_io_data_size } < need {
            return false;
        }
        // SAFETY: the bio is the target's and not in flight (`OwnedBio`); a target with this
        // much per-bio data records every bio in `map` (only `RECORDS_BIOS` targets reserve
        // it), so the record is there.
        unsafe { bindings::orion_bio_restore(bio.as_raw()) };
        true
    }

    /// Whether the target's device is suspending without flushing (in `presuspend` and
    /// `postsuspend`): bios it holds may be ended with `IoStatus::Requeue`.
    pub fn noflush_suspending(&self) -> bool {
        // SAFETY: the target is live by the type invariant.
        unsafe { bindings::dm_noflush_suspending(self.raw()) != 0 }
    }

    /// Sets the largest bio dm core sends to this target (it splits larger ones), as a
    /// target may do when it resumes (dm-snap's merge target); 0 lifts the limit.
    pub fn set_max_io_len(&self, sectors: u32) {
        // SAFETY: `ti` is valid (type invariant); dm core reads the field when it splits.
        unsafe { bindings::orion_ti_set_max_io_len(self.raw(), sectors) };
    }

    /// The version of the target type.
    pub fn type_version(&self) -> [u32; 3] {
        // SAFETY: as in `type_name`, the type outlives the target.
        unsafe { (*(*self.raw()).type_).version }
    }
}

/// Visits the devices of a target for `iterate_devices` (the C callout and its cookie).
///
/// # Invariants
///
/// `ti`, `callout` and `data` are the arguments dm core passed to `iterate_devices`, valid for
/// the duration of that call.
pub struct DeviceVisitor<'a> {
    ti: *mut bindings::dm_target,
    callout: bindings::iterate_devices_callout_fn,
    data: *mut c_void,
    ret: c_int,
    _p: PhantomData<&'a ()>,
}

impl DeviceVisitor<'_> {
    /// Reports `len` sectors of `dev` from `start`; returns `false` when dm core asks to stop.
    pub fn visit(&mut self, dev: &Dev, start: u64, len: u64) -> bool {
        if self.ret != 0 {
            return false;
        }
        if let Some(f) = self.callout {
            // SAFETY: by the type invariant `f`, `ti` and `data` are dm core's live arguments,
            // and `dev` is a device of this target.
            self.ret = unsafe { f(self.ti, dev.as_raw(), start, len, self.data) };
        }
        self.ret == 0
    }
}

/// The C callbacks for target type `T`, and the `target_type` template built from them.
pub(crate) struct TargetVtable<T: Target>(PhantomData<T>);

impl<T: Target> TargetVtable<T> {
    /// # Safety
    ///
    /// - Called by dm core with a `dm_target` under construction and `argc` strings in `argv`.
    unsafe extern "C" fn ctr_callback(
        ti: *mut bindings::dm_target,
        argc: c_uint,
        argv: *mut *mut c_char,
    ) -> c_int {
        let Some(ti_nn) = NonNull::new(ti) else {
            return EINVAL.to_errno();
        };
        // INVARIANT: dm core is constructing `ti` and nothing else touches it until we return.
        let mut ctor = Constructor {
            ti: ti_nn,
            read_only: Default::default(),
            read_only_n: core::cell::Cell::new(0),
            _p: PhantomData,
        };
        // SAFETY: dm core passes `argc` valid NUL-terminated strings that outlive this call.
        let args = unsafe { Args::from_raw(argc, argv) };
        match T::ctr(&mut ctor, args) {
            Ok(private) => {
                // SAFETY: `ti` is valid; dm core hands `private` back to us in every callback.
                unsafe { (*ti).private = private.into_foreign().cast_mut() };
                if T::HAS_DEFER {
                    // Deferred bios carry an 8-byte tag (the `OwnedBio` invariant), after
                    // the record when the target keeps one.
                    let size = if T::RECORDS_BIOS {
                        // SAFETY: returns a constant.
                        8 + unsafe { bindings::orion_bio_record_bytes() }
                    } else {
                        8
                    };
                    // SAFETY: `ti` is ours during construction.
                    unsafe { (*ti).per_io_data_size = (*ti).per_io_data_size.max(size) };
                }
                0
            }
            Err(e) => {
                // SAFETY: `ti` is valid; `ti->error` is only read by dm core, and `e.msg` is static.
                unsafe { (*ti).error = e.msg.as_char_ptr().cast_mut() };
                e.err.to_errno()
            }
        }
    }

    /// # Safety
    ///
    /// - Called by dm core once for a target whose `ctr` succeeded; no callback runs after it.
    unsafe extern "C" fn dtr_callback(ti: *mut bindings::dm_target) {
        // SAFETY: `private` was set by `into_foreign` in `ctr` and is not used after this call.
        drop(unsafe { T::Private::from_foreign((*ti).private) });
    }

    /// # Safety
    ///
    /// - `ti` is a constructed target; the returned borrow must not outlive the callback.
    unsafe fn private<'a>(ti: *mut bindings::dm_target) -> Borrowed<'a, T> {
        // SAFETY: `private` came from `into_foreign` in `ctr`, and `dtr` (the only place that
        // calls `from_foreign`) cannot run while a callback is in progress.
        unsafe { T::Private::borrow((*ti).private) }
    }

    /// # Safety
    ///
    /// - Called by dm core from `map` with a constructed target and a bio it owns.
    unsafe extern "C" fn map_callback(
        ti: *mut bindings::dm_target,
        bio: *mut bindings::bio,
    ) -> c_int {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        // SAFETY: dm core passes a bio that is ours until `map` returns.
        let mbio = unsafe { MapBio::from_raw(bio) };
        if T::HAS_DEFER {
            // SAFETY: targets that defer reserved 8 bytes of per-bio data in `ctr`; dm core
            // does not initialise it.
            unsafe { *super::bio::tag_ptr(bio) = 0 };
            if T::RECORDS_BIOS {
                // SAFETY: the target reserved room for the record before the tag in `ctr`.
                unsafe { bindings::orion_bio_record(bio) };
            }
        }
        match T::map(this, tref, mbio) {
            MapResult::Remapped => bindings::DM_MAPIO_REMAPPED as c_int,
            MapResult::Done => {
                mbio.complete();
                bindings::DM_MAPIO_SUBMITTED as c_int
            }
            MapResult::Kill => bindings::DM_MAPIO_KILL as c_int,
            MapResult::Requeue => bindings::DM_MAPIO_REQUEUE as c_int,
            MapResult::DelayRequeue => bindings::DM_MAPIO_DELAY_REQUEUE as c_int,
            MapResult::Defer if T::HAS_DEFER => {
                let Some(raw) = NonNull::new(bio) else {
                    return bindings::DM_MAPIO_KILL as c_int;
                };
                // SAFETY: dm core handed us `bio` and we return SUBMITTED, so the target owns
                // it from here.
                let owned = unsafe { OwnedBio::from_raw(raw) };
                // SAFETY: per this function's contract.
                let this = unsafe { Self::private(ti) };
                T::defer(this, tref, owned);
                bindings::DM_MAPIO_SUBMITTED as c_int
            }
            MapResult::Defer => bindings::DM_MAPIO_KILL as c_int,
        }
    }

    /// # Safety
    ///
    /// - Called by dm core on completion of a bio mapped by this target; `error` is valid.
    unsafe extern "C" fn end_io_callback(
        ti: *mut bindings::dm_target,
        bio: *mut bindings::bio,
        error: *mut bindings::blk_status_t,
    ) -> c_int {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        // SAFETY: the bio is valid during the completion callback.
        let b = unsafe { Bio::from_raw(bio) };
        // SAFETY: `error` is a valid, exclusive pointer for this call.
        let status = unsafe { BlkStatus::from_raw(error) };
        match T::end_io(this, tref, b, status) {
            EndIoResult::Done => bindings::DM_ENDIO_DONE as c_int,
            EndIoResult::Defer if T::HAS_END_IO_DEFER && T::HAS_DEFER => {
                let Some(raw) = NonNull::new(bio) else {
                    return bindings::DM_ENDIO_DONE as c_int;
                };
                // SAFETY: the bio is live and `error` valid; the status travels with the bio.
                unsafe { (*bio).bi_status = *error };
                // SAFETY: we return DM_ENDIO_INCOMPLETE, so the target owns the bio until it
                // ends it again; it has the 8-byte tag (`HAS_DEFER`).
                let owned = unsafe { OwnedBio::from_raw(raw) };
                // SAFETY: per this function's contract.
                let this = unsafe { Self::private(ti) };
                T::end_io_defer(this, tref, owned);
                bindings::DM_ENDIO_INCOMPLETE as c_int
            }
            EndIoResult::Defer => bindings::DM_ENDIO_DONE as c_int,
            EndIoResult::Incomplete => bindings::DM_ENDIO_INCOMPLETE as c_int,
            EndIoResult::Requeue => bindings::DM_ENDIO_REQUEUE as c_int,
            EndIoResult::DelayRequeue => bindings::DM_ENDIO_DELAY_REQUEUE as c_int,
        }
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target and a `maxlen`-byte result buffer.
    unsafe extern "C" fn status_callback(
        ti: *mut bindings::dm_target,
        kind: bindings::status_type_t,
        flags: c_uint,
        result: *mut c_char,
        maxlen: c_uint,
    ) {
        // SAFETY: `result` is valid for `maxlen` bytes for this call.
        let mut out = unsafe { StatusWriter::from_raw(result, maxlen) };
        let Some(kind) = StatusType::from_c(kind) else {
            return;
        };
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        T::status(this, tref, kind, flags, &mut out);
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target, `argc` strings in `argv` and a
    ///   `maxlen`-byte result buffer.
    unsafe extern "C" fn message_callback(
        ti: *mut bindings::dm_target,
        argc: c_uint,
        argv: *mut *mut c_char,
        result: *mut c_char,
        maxlen: c_uint,
    ) -> c_int {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        // SAFETY: dm core passes `argc` valid strings that outlive this call.
        let args = unsafe { Args::from_raw(argc, argv) };
        // SAFETY: `result` is valid for `maxlen` bytes for this call.
        let mut out = unsafe { StatusWriter::from_raw(result, maxlen) };
        match T::message(this, tref, args, &mut out) {
            // dm core reads 1 as "the result buffer holds a reply".
            Ok(()) => c_int::from(!out.is_empty()),
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target, its callout and the callout's cookie.
    unsafe extern "C" fn iterate_devices_callback(
        ti: *mut bindings::dm_target,
        callout: bindings::iterate_devices_callout_fn,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        // INVARIANT: the arguments are dm core's, valid for this call.
        let mut visitor = DeviceVisitor {
            ti,
            callout,
            data,
            ret: 0,
            _p: PhantomData,
        };
        T::iterate_devices(this, tref, &mut visitor);
        visitor.ret
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target and the limits it is computing.
    unsafe extern "C" fn io_hints_callback(
        ti: *mut bindings::dm_target,
        limits: *mut bindings::queue_limits,
    ) {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        // SAFETY: `limits` is valid and exclusively ours for this call.
        let limits = unsafe { QueueLimits::from_raw(limits) };
        T::io_hints(this, tref, limits);
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target.
    unsafe extern "C" fn presuspend_callback(ti: *mut bindings::dm_target) {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        T::presuspend(this, tref);
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target.
    unsafe extern "C" fn presuspend_undo_callback(ti: *mut bindings::dm_target) {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        T::presuspend_undo(this, tref);
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target.
    unsafe extern "C" fn postsuspend_callback(ti: *mut bindings::dm_target) {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        T::postsuspend(this, tref);
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target.
    unsafe extern "C" fn preresume_callback(ti: *mut bindings::dm_target) -> c_int {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        match T::preresume(this, tref) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target.
    unsafe extern "C" fn resume_callback(ti: *mut bindings::dm_target) {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        T::resume(this, tref);
    }

    /// # Safety
    ///
    /// - Called by dm core with a constructed target and a valid `bdev` out pointer.
    unsafe extern "C" fn prepare_ioctl_callback(
        ti: *mut bindings::dm_target,
        bdev: *mut *mut bindings::block_device,
    ) -> c_int {
        // SAFETY: per this function's contract.
        let (this, tref) = unsafe { (Self::private(ti), TargetRef::from_raw(ti)) };
        match T::prepare_ioctl(this, tref) {
            Ok(p) => {
                // SAFETY: `bdev` is a valid out pointer for this call.
                unsafe { *bdev = p.bdev.as_raw() };
                // dm core reads 1 as "partial mapping: restrict the ioctls".
                c_int::from(!p.whole_device)
            }
            Err(e) => e.to_errno(),
        }
    }

    /// The `target_type` for `T`, without name and module (set at registration).
    pub(crate) const TEMPLATE: bindings::target_type = bindings::target_type {
        features: T::FEATURES.0,
        version: T::VERSION,
        ctr: Some(Self::ctr_callback),
        dtr: Some(Self::dtr_callback),
        map: Some(Self::map_callback),
        end_io: if T::HAS_END_IO {
            Some(Self::end_io_callback)
        } else {
            None
        },
        status: if T::HAS_STATUS {
            Some(Self::status_callback)
        } else {
            None
        },
        message: if T::HAS_MESSAGE {
            Some(Self::message_callback)
        } else {
            None
        },
        iterate_devices: if T::HAS_ITERATE_DEVICES {
            Some(Self::iterate_devices_callback)
        } else {
            None
        },
        io_hints: if T::HAS_IO_HINTS {
            Some(Self::io_hints_callback)
        } else {
            None
        },
        presuspend: if T::HAS_PRESUSPEND {
            Some(Self::presuspend_callback)
        } else {
            None
        },
        presuspend_undo: if T::HAS_PRESUSPEND_UNDO {
            Some(Self::presuspend_undo_callback)
        } else {
            None
        },
        postsuspend: if T::HAS_POSTSUSPEND {
            Some(Self::postsuspend_callback)
        } else {
            None
        },
        preresume: if T::HAS_PRERESUME {
            Some(Self::preresume_callback)
        } else {
            None
        },
        resume: if T::HAS_RESUME {
            Some(Self::resume_callback)
        } else {
            None
        },
        prepare_ioctl: if T::HAS_PREPARE_IOCTL {
            Some(Self::prepare_ioctl_callback)
        } else {
            None
        },
        // SAFETY: the remaining fields are pointers, optional callbacks and a list head, for
        // which all-zero means NULL/None/unlinked.
        ..unsafe { core::mem::zeroed() }
    };
}
