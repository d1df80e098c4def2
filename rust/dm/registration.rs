// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Registration of target types with dm core, honouring the module's `prefix` parameter.
//!
//! Each target registers as `<prefix><name>`. A name that another module already provides
//! (`linear` and `striped` always are: they are built into dm-mod) is skipped with one log
//! line; loading fails only if no target registered at all.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)

use super::{
    bindings,
    target::{Target, TargetVtable},
};
use kernel::{error::to_result, prelude::*, str::CString, types::Opaque, ThisModule};

/// The longest target name the dm ioctl interface carries (`DM_MAX_TYPE_NAME` less the NUL).
const MAX_NAME_LEN: usize = bindings::DM_MAX_TYPE_NAME as usize - 1;

/// The `prefix` module parameter.
pub fn prefix() -> &'static CStr {
    // SAFETY: the glue returns the parameter's string, which is read-only (mode 0444) and
    // lives as long as the module.
    unsafe { CStr::from_char_ptr(bindings::orion_dm_prefix()) }
}

/// One registered target type; unregistered on drop.
///
/// # Invariants
///
/// `tt` is registered with dm core, and its `name` points into `name`. Both are boxed, so
/// they do not move while registered.
struct Registration {
    tt: KBox<Opaque<bindings::target_type>>,
    #[expect(
        dead_code,
        reason = "owns the string that dm core reads through `tt.name`"
    )]
    name: CString,
}

// SAFETY: dm core owns the `target_type` while it is registered and synchronises access with
// its own lock; we only pass its address to `dm_unregister_target`.
unsafe impl Send for Registration {}
// SAFETY: `&Registration` gives no access to the `target_type`.
unsafe impl Sync for Registration {}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the type is registered; dm core only lets the module
        // unload (and so this run) when no target of the type exists.
        unsafe { bindings::dm_unregister_target(self.tt.get()) };
    }
}

/// The target types this module registered.
pub struct Registrations {
    module: &'static ThisModule,
    prefix: &'static CStr,
    regs: KVec<Registration>,
}

impl Registrations {
    /// An empty set for `module`, whose target names get `prefix`.
    pub fn new(module: &'static ThisModule, prefix: &'static CStr) -> Self {
        Self {
            module,
            prefix,
            regs: KVec::new(),
        }
    }

    /// Registers `T`, or logs why it was skipped. Fails only on errors other than a taken
    /// or unusable name.
    pub fn add<T: Target>(&mut self) -> Result {
        let mut name = CString::try_from_fmt(kernel::fmt!("{}{}", self.prefix, T::NAME))?;
        if name.len() > MAX_NAME_LEN {
            name = CString::try_from_fmt(kernel::fmt!("{}{}", self.prefix, T::SHORT_NAME))?;
        }
        if name.len() > MAX_NAME_LEN {
            pr_warn!(
                "target '{}' skipped: names longer than {} bytes do not fit dm ioctls\n",
                &*name,
                MAX_NAME_LEN
            );
            return Ok(());
        }
        self.regs.reserve(1, GFP_KERNEL)?;
        let tt = KBox::new(Opaque::new(TargetVtable::<T>::TEMPLATE), GFP_KERNEL)?;
        let raw = tt.get();
        // SAFETY: `raw` is our freshly boxed, unregistered `target_type`; the name lives in
        // `name`, which is kept with it.
        unsafe {
            (*raw).name = name.as_char_ptr();
            (*raw).module = self.module.as_ptr();
        }
        // SAFETY: `raw` is a complete `target_type` that stays at this address until
        // `Registration::drop` unregisters it.
        match to_result(unsafe { bindings::dm_register_target(raw) }) {
            Ok(()) => {
                pr_info!("registered target '{}'\n", &*name);
                // INVARIANT: just registered; `name` and `tt` move in their boxes.
                self.regs.push(Registration { tt, name }, GFP_KERNEL)?;
                Ok(())
            }
            // dm core answers EBUSY when the name is already registered.
            Err(e) if e == EBUSY => {
                pr_info!("target '{}' skipped: another module provides it\n", &*name);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Checks that at least one target registered.
    pub fn finish(self) -> Result<Self> {
        if self.regs.is_empty() {
            pr_err!("no target registered: every name was taken or too long (try prefix=orion-)\n");
            return Err(EEXIST);
        }
        Ok(self)
    }
}
