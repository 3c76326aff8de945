//! Independent answers to check the cluster against, written plainly and separately from the
//! daemon's kernels.

/// Deterministic Miller–Rabin for 64-bit n (these 12 bases suffice below 3.3·10^24).
pub fn is_prime_u64(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    for p in BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let mul = |a: u64, b: u64| (u128::from(a) * u128::from(b) % u128::from(n)) as u64;
    let pow = |mut b: u64, mut e: u64| {
        let mut r = 1;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, b);
            }
            b = mul(b, b);
            e >>= 1;
        }
        r
    };
    let (mut d, mut s) = (n - 1, 0);
    while d % 2 == 0 {
        d /= 2;
        s += 1;
    }
    BASES.iter().all(|&a| {
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            return true;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                return true;
            }
        }
        false
    })
}

/// Random letter `i` of `seed`, as the README documents the recipe: byte `i mod 8` of
/// SplitMix64's output number `i / 8`, mapped to `a + (b·26 >> 8)`.
pub fn random_letter(seed: u64, i: u64) -> u8 {
    let mut z = seed.wrapping_add((i / 8 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let b = z.to_le_bytes()[(i % 8) as usize];
    b'a' + ((u16::from(b) * 26) >> 8) as u8
}

/// A throw's heights, integrated step by step with classical RK4 (a = −g − k·v·|v|), written
/// apart from the daemon's kernel: `(t, y)` of every point until the body is below ground.
pub fn fall_rk4(y0: f64, v0: f64, g: f64, k: f64, dt: f64) -> Vec<f64> {
    let a = |v: f64| -g - k * v * v.abs();
    let (mut y, mut v) = (y0, v0);
    let mut heights = vec![];
    while y >= 0.0 {
        heights.push(y);
        let (k1y, k1v) = (v, a(v));
        let (k2y, k2v) = (v + dt / 2.0 * k1v, a(v + dt / 2.0 * k1v));
        let (k3y, k3v) = (v + dt / 2.0 * k2v, a(v + dt / 2.0 * k2v));
        let (k4y, k4v) = (v + dt * k3v, a(v + dt * k3v));
        y += dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y);
        v += dt / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
    }
    heights
}

/// Where a throw without drag lands: t = (v0 + √(v0² + 2·g·y0)) / g.
pub fn ground_time(y0: f64, v0: f64, g: f64) -> f64 {
    (v0 + (v0 * v0 + 2.0 * g * y0).sqrt()) / g
}
