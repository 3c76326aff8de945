//! Primality: the notebook's trial division, and a fast verdict with Pollard–Brent rho.
//!
//! *Trial division* scans candidate divisors `d` in a chunk's range for `n % d == 0`. Unit `u`
//! of a job is the divisor `u + 2`, so the job's units cover `2..=isqrt(n)`. Candidates skip
//! multiples of 2, 3 and 5 (a 30-wheel: 8 of every 30 numbers). For `n < 2^63` and divisors
//! past 2^16 the test is branch-free, division-free and vectorises (see [`any_divides`]);
//! a hit is then confirmed with a plain `%`.
//!
//! *Auto* asks `machine-prime` for a verdict (deterministic for 64-bit `n`, BPSW above), and
//! for a composite runs Brent's rho from a different start per unit, so every slot searches
//! its own walk and the first factor found ends the job.

use super::simd::{dispatch_by_level, Level};
use super::{Cancel, KernelError};

/// Residues mod 30 coprime to 30: the 30-wheel's candidates.
const WHEEL: [u64; 8] = [1, 7, 11, 13, 17, 19, 23, 29];
/// Wheel turns (of 30 numbers) between cancellation checks: ~0.1–1 ms.
const TURNS_PER_CHECK: u64 = 1 << 14;
/// Divisors from here on use the vectorised test (below, the plain one is cheap anyway).
const FLOAT_TEST_FROM: u64 = 1 << 16;
/// Iterations of one rho attempt before the next start is tried (and cancellation checked).
const RHO_ITERATIONS: usize = 1 << 17;
/// Rho attempts a job may make before it reports that no factor was found.
pub const RHO_ATTEMPTS: u64 = 1 << 16;

/// How many divisor candidates trial division of `n` scans (units `0..this`).
pub fn trial_units(n: u128) -> u64 {
    if n < 4 {
        return 0;
    }
    // isqrt(2^128 - 1) = 2^64 - 1, so this fits.
    (n.isqrt() - 1) as u64
}

/// The smallest divisor of `n` among units `start..end` (divisors `start+2 .. end+2`), if any.
pub fn trial(
    n: u128,
    start: u64,
    end: u64,
    level: Level,
    cancel: &Cancel,
) -> Result<Option<u128>, KernelError> {
    let (lo, hi) = (u128::from(start) + 2, u128::from(end) + 2);
    for p in [2u128, 3, 5] {
        if lo <= p && p < hi && n.is_multiple_of(p) {
            return Ok(Some(p));
        }
    }
    // Units are below 2^64 - 1, so divisors fit in u64 (hi may be 2^64 exactly: saturate).
    let (lo, hi) = (lo as u64, hi.min(u128::from(u64::MAX)) as u64);
    let mut turn = lo / 30;
    let last_turn = hi.div_ceil(30);
    while turn < last_turn {
        cancel.check()?;
        let stop = last_turn.min(turn + TURNS_PER_CHECK);
        let found = match u64::try_from(n) {
            Ok(n) => scan_u64(n, turn, stop, lo, hi, level),
            Err(_) => scan_u128(n, turn, stop, lo, hi),
        };
        if found.is_some() {
            return Ok(found.map(u128::from));
        }
        turn = stop;
    }
    Ok(None)
}

fn in_range(d: u64, lo: u64, hi: u64) -> bool {
    d >= 7 && d >= lo && d < hi
}

fn scan_u128(n: u128, first: u64, stop: u64, lo: u64, hi: u64) -> Option<u64> {
    (first..stop)
        .flat_map(|turn| WHEEL.map(|r| turn * 30 + r))
        .find(|&d| in_range(d, lo, hi) && n.is_multiple_of(u128::from(d)))
}

fn scan_u64(n: u64, first: u64, stop: u64, lo: u64, hi: u64, level: Level) -> Option<u64> {
    // Edges of the range, and small divisors: plainly.
    let float_from = FLOAT_TEST_FROM.div_ceil(30).max(lo.div_ceil(30));
    let float_to = (hi / 30).max(float_from);
    let plain = |a: u64, b: u64| {
        (a..b)
            .flat_map(|t| WHEEL.map(|r| t * 30 + r))
            .find(|&d| in_range(d, lo, hi) && n.is_multiple_of(d))
    };
    if first < float_from.min(stop) {
        if let Some(d) = plain(first, float_from.min(stop)) {
            return Some(d);
        }
    }
    let (a, b) = (first.max(float_from), stop.min(float_to));
    if a < b && (n >= 1 << 63 || any_divides_at(level, n, a, b)) {
        // Rare (or n too large for the fast test): find which one, exactly.
        if let Some(d) = plain(a, b) {
            return Some(d);
        }
    }
    if stop > float_to {
        return plain(first.max(float_to), stop);
    }
    None
}

/// Whether any wheel candidate of turns `first..stop` divides `n`. Every candidate must be at
/// least 2^16, and `n` below 2^63.
///
/// For odd `d`, `q = n · d⁻¹ mod 2^64` is `n / d` when `d` divides `n`, and otherwise a number
/// with `q · d ≥ 2^64` (were it smaller, `q · d ≡ n` would make it equal `n`). So `d | n`
/// exactly when `q · d < 2^63 > n`, which a float product decides with room to spare. The
/// inverse comes from Newton's iteration, all multiplications: no division in the loop.
///
/// This wins where 64-bit multiplies are vector instructions (AVX-512); without them
/// [`any_divides_by_division`] is faster.
#[inline(always)]
fn any_divides(n: u64, first: u64, stop: u64) -> bool {
    const LIMIT: f64 = (1u64 << 63) as f64;
    let mut hits = 0u64;
    for turn in first..stop {
        for r in WHEEL {
            // Below 2^64 by the caller's range; wrapping keeps debug overflow checks out.
            let d = turn.wrapping_mul(30).wrapping_add(r);
            // d·x ≡ 1 mod 2^k: 3·d ^ 2 holds for k = 5, and each step doubles k.
            let mut inv = d.wrapping_mul(3) ^ 2;
            for _ in 0..4 {
                inv = inv.wrapping_mul(2u64.wrapping_sub(d.wrapping_mul(inv)));
            }
            let q = n.wrapping_mul(inv);
            hits |= u64::from((q as f64) * (d as f64) < LIMIT);
        }
    }
    hits != 0
}

/// [`any_divides`] by float division: `q = n / d` in `f64` is within one of the true quotient
/// (`n / d < 2^48`), so `r = n - q·d` is `0`, `d` or `-d` exactly when `d` divides `n`.
#[inline(always)]
fn any_divides_by_division(n: u64, first: u64, stop: u64) -> bool {
    let nf = n as f64;
    let mut hits = 0u64;
    for turn in first..stop {
        for r in WHEEL {
            let d = turn.wrapping_mul(30).wrapping_add(r);
            let q = (nf / d as f64) as u64;
            let rem = n.wrapping_sub(q.wrapping_mul(d));
            hits |= u64::from(rem == 0 || rem == d || rem == d.wrapping_neg());
        }
    }
    hits != 0
}

dispatch_by_level! {
    fn any_divides_at(n: u64, first: u64, stop: u64) -> bool {
        scalar: any_divides_by_division,
        avx2: any_divides_by_division,
        avx512: any_divides,
    }
}

/// Whether `n` is prime: deterministic below 2^64, BPSW (no known counterexample) above.
pub fn is_prime(n: u128) -> bool {
    match u64::try_from(n) {
        Ok(n) => machine_prime::is_prime(n),
        Err(_) => machine_prime::is_prime_128(n),
    }
}

/// Rho attempts `start..end` on composite `n`: the first non-trivial factor found.
pub fn rho(n: u128, start: u64, end: u64, cancel: &Cancel) -> Result<Option<u128>, KernelError> {
    cancel.check()?;
    for p in [2u128, 3, 5, 7, 11, 13] {
        if n.is_multiple_of(p) && n != p {
            return Ok(Some(p));
        }
    }
    for attempt in start..end {
        cancel.check()?;
        let (x0, c) = (u128::from(attempt) + 2, u128::from(attempt) + 1);
        let found = match u64::try_from(n) {
            Ok(n64) => brent(n, x0 % n, c % n, |a, b| {
                (u128::from(a as u64) * u128::from(b as u64)) % u128::from(n64)
            }),
            Err(_) => brent(n, x0 % n, c % n, |a, b| mul_mod_wide(a, b, n)),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Products per gcd in Brent's cycle search.
const BATCH: u64 = 128;

/// One Brent–Pollard rho walk `x ↦ x² + c (mod n)` from `x0`, for at most [`RHO_ITERATIONS`]
/// steps; `mul` is `a·b mod n`.
fn brent(n: u128, x0: u128, c: u128, mul: impl Fn(u128, u128) -> u128) -> Option<u128> {
    let step = |x: u128| add_mod(mul(x, x), c, n);
    let (mut y, mut r, mut q, mut g) = (x0, 1u64, 1u128, 1u128);
    let (mut x, mut ys) = (y, y);
    let mut steps = 0usize;
    while g == 1 {
        x = y;
        for _ in 0..r {
            y = step(y);
        }
        let mut k = 0;
        while k < r && g == 1 {
            ys = y;
            for _ in 0..BATCH.min(r - k) {
                y = step(y);
                q = mul(q, x.abs_diff(y));
            }
            g = gcd(q, n);
            k += BATCH;
        }
        r *= 2;
        steps += r as usize;
        if steps > RHO_ITERATIONS {
            return None;
        }
    }
    if g == n {
        // The batch overshot: redo it one step at a time.
        loop {
            ys = step(ys);
            g = gcd(x.abs_diff(ys), n);
            if g > 1 {
                break;
            }
        }
    }
    (g > 1 && g < n).then_some(g)
}

fn add_mod(a: u128, b: u128, n: u128) -> u128 {
    let (sum, overflow) = a.overflowing_add(b);
    if overflow || sum >= n {
        sum.wrapping_sub(n)
    } else {
        sum
    }
}

/// `a·b mod n` for any 128-bit `n`, by doubling and adding (no 256-bit type needed). Slow next
/// to the 64-bit path, which is why numbers above 2^64 factor slowly.
fn mul_mod_wide(mut a: u128, mut b: u128, n: u128) -> u128 {
    let mut result = 0;
    a %= n;
    while b > 0 {
        if b & 1 == 1 {
            result = add_mod(result, a, n);
        }
        a = add_mod(a, a, n);
        b >>= 1;
    }
    result
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab notebook's numbers: all prime.
    pub const NOTEBOOK: [u128; 11] = [
        499139582359084529,
        943349775459380173,
        440149999829818483,
        761795777243436499,
        403111596387917561,
        811508878081456537,
        341705128992983771,
        178225203054306761,
        446379149495008381,
        283762230407893121,
        880354649778912289,
    ];

    fn smallest_factor_by_trial(n: u128, level: Level) -> Option<u128> {
        trial(n, 0, trial_units(n), level, &Cancel::default()).unwrap()
    }

    #[test]
    fn small_numbers() {
        for level in Level::available() {
            for n in 0..2000u128 {
                let naive = (2..n).find(|d| d * d <= n && n % d == 0);
                assert_eq!(smallest_factor_by_trial(n, level), naive, "n={n} {level:?}");
                assert_eq!(is_prime(n), n >= 2 && naive.is_none(), "n={n}");
            }
        }
    }

    #[test]
    fn float_test_finds_large_divisors_exactly() {
        // Two primes both near 2^31, a prime squared near 2^32, a factor just past 2^16.
        let cases: [(u64, u64); 4] = [
            (2147483629, 2147483647),
            (4294967291, 4294967291),
            (65537, 4294967311),
            (1048573, 1048583),
        ];
        let cancel = Cancel::default();
        for (p, q) in cases {
            let n = u128::from(p) * u128::from(q);
            let unit = p - 2;
            for level in Level::available() {
                // A range ending just before the factor finds nothing; one holding it does.
                assert_eq!(
                    trial(n, unit.saturating_sub(100_000), unit, level, &cancel).unwrap(),
                    None
                );
                let hit = trial(n, unit.saturating_sub(100_000), unit + 1, level, &cancel).unwrap();
                assert_eq!(hit, Some(u128::from(p)), "{n} {level:?}");
            }
        }
        // And a whole scan, from 2, at the best level.
        let n = 1048573u128 * 1048583;
        assert_eq!(smallest_factor_by_trial(n, Level::detect()), Some(1048573));
    }

    #[test]
    fn notebook_numbers_are_prime_both_ways() {
        for n in NOTEBOOK {
            assert!(is_prime(n), "{n}");
        }
        // One full trial scan (the others run end to end).
        assert_eq!(smallest_factor_by_trial(NOTEBOOK[7], Level::detect()), None);
    }

    #[test]
    fn rho_factors_composites_including_big_ones() {
        let cancel = Cancel::default();
        for n in [4u128, 1_000_000_007 * 998_244_353, u128::from(u64::MAX) * 3] {
            let f = rho(n, 0, 64, &cancel).unwrap().expect("a factor");
            assert!(f > 1 && f < n && n % f == 0, "{n}: {f}");
        }
        let big = 4_294_967_291u128 * 18_446_744_073_709_551_557; // 2^32-5 × 2^64-59
        let f = rho(big, 0, 64, &cancel).unwrap().expect("a factor");
        assert_eq!(big % f, 0);
    }

    #[test]
    fn cancelled_scans_stop() {
        let cancel = Cancel::default();
        cancel.cancel();
        assert_eq!(
            trial(NOTEBOOK[0], 0, 1 << 40, Level::Scalar, &cancel),
            Err(KernelError::Cancelled)
        );
        let n = 1_000_000_007 * 998_244_353;
        assert_eq!(rho(n, 0, 10, &cancel), Err(KernelError::Cancelled));
    }
}
