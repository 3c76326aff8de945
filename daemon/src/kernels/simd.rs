//! Run-time choice of SIMD level.
//!
//! Kernels are written once as plain loops the compiler vectorises, then compiled three times
//! under `#[target_feature]` by [`dispatch_by_level!`]; [`Level::detect`] picks the best the
//! CPU has. Never build with `-C target-cpu=native`: the shipped binary must run on any x86-64.

/// An instruction-set level a kernel can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
    Avx512,
}

impl Level {
    /// The best level this CPU supports (cached after the first call by std).
    pub fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Level::Avx2;
            }
        }
        Level::Scalar
    }

    /// Every level this CPU can run, lowest first (for benchmarks and tests).
    pub fn available() -> Vec<Level> {
        let best = Level::detect();
        [Level::Scalar, Level::Avx2, Level::Avx512].into_iter().filter(|l| *l <= best).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// Defines `fn NAME(level: Level, ARGS) -> RET` that runs `scalar` as compiled for plain
/// x86-64, or `avx2` / `avx512` (which should be `#[inline(always)]`) compiled with those
/// target features. A level the CPU lacks panics instead of running unsupported instructions.
macro_rules! dispatch_by_level {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty {
            scalar: $scalar:path,
            avx2: $avx2:path,
            avx512: $avx512:path $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis fn $name(level: $crate::kernels::simd::Level, $($arg: $ty),*) -> $ret {
            use $crate::kernels::simd::Level;
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn with_avx2($($arg: $ty),*) -> $ret {
                $avx2($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
            fn with_avx512($($arg: $ty),*) -> $ret {
                $avx512($($arg),*)
            }
            assert!(level <= Level::detect(), "SIMD level {level:?} is not supported by this CPU");
            match level {
                Level::Scalar => $scalar($($arg),*),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the assert above checked that the CPU has these features.
                Level::Avx2 => unsafe { with_avx2($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Level::Avx512 => unsafe { with_avx512($($arg),*) },
                #[cfg(not(target_arch = "x86_64"))]
                _ => $scalar($($arg),*),
            }
        }
    };
}
pub(crate) use dispatch_by_level;
