//! The two facts pricing reads off a request: when its price ramp reaches a given price, and
//! whether a journal satisfies its predicate.

use alloy::primitives::{U256, U512};
use tiffin_market::claim::journal_digest;
use tiffin_market::request::{PREDICATE_ANY, PREDICATE_DIGEST_MATCH, PREDICATE_PREFIX_MATCH};
use tiffin_market::{Offer, Predicate};

/// The first second at which the request can be locked for at least `price` wei: the exact
/// inverse of [`Offer::price_at`] (a linear ramp rounded down).
///
/// `biddingStart` when `price <= minPrice` (the market refuses locks before it); otherwise the
/// smallest `t` with `offer.price_at(t) >= price`, so `offer.price_at(t - 1) < price`. `None`
/// when the ramp never reaches `price` (above `maxPrice`) or the time overflows.
pub fn time_at_price(offer: &Offer, price: U256) -> Option<u64> {
    if price > offer.maxPrice {
        return None;
    }
    if price <= offer.minPrice {
        return Some(offer.biddingStart);
    }
    // price_at(start + e) = min + floor(span * e / ramp) for 0 < e < ramp, and max from ramp on.
    // floor(span * e / ramp) >= needed  <=>  e >= needed * ramp / span, so the answer is the
    // ceiling of that, and at least 1 (at biddingStart itself the price is still minPrice).
    let needed = U512::from(price - offer.minPrice);
    let span = U512::from(offer.maxPrice - offer.minPrice);
    let ramp = U512::from(offer.rampUpPeriod);
    let product = needed * ramp;
    let (quotient, remainder) = product.div_rem(span);
    let elapsed = quotient + U512::from(u8::from(!remainder.is_zero()));
    let elapsed = u64::try_from(elapsed).ok()?.max(1);
    offer.biddingStart.checked_add(elapsed)
}

/// Whether `journal` satisfies `predicate`, exactly as the market checks it at fulfilment:
/// DIGEST_MATCH compares SHA-256(journal) with the 32 data bytes, PREFIX_MATCH requires the
/// journal to start with the data, ANY accepts every journal. Unknown types match nothing.
pub fn predicate_matches(predicate: &Predicate, journal: &[u8]) -> bool {
    match predicate.predicateType {
        PREDICATE_DIGEST_MATCH => {
            predicate.data.len() == 32 && journal_digest(journal).as_slice() == &predicate.data[..]
        }
        PREDICATE_PREFIX_MATCH => journal.starts_with(&predicate.data),
        PREDICATE_ANY => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;

    fn offer(min: u64, max: u64, start: u64, ramp: u32) -> Offer {
        Offer {
            minPrice: U256::from(min),
            maxPrice: U256::from(max),
            biddingStart: start,
            rampUpPeriod: ramp,
            lockTimeout: ramp.saturating_add(100),
            timeout: ramp.saturating_add(200),
            lockCollateral: U256::ZERO,
        }
    }

    /// The first `t >= biddingStart` with `price_at(t) >= price`, by scanning.
    fn scan(offer: &Offer, price: U256) -> Option<u64> {
        let end = offer.biddingStart + u64::from(offer.rampUpPeriod) + 1;
        (offer.biddingStart..=end).find(|&t| offer.price_at(t) >= price)
    }

    #[test]
    fn ramp_formula_table() {
        // (min, max, ramp, t - biddingStart, price_at)
        let cases: &[(u64, u64, u32, u64, u64)] = &[
            (100, 1100, 10, 0, 100),
            (100, 1100, 10, 1, 200),
            (100, 1100, 10, 9, 1000),
            (100, 1100, 10, 10, 1100),
            (0, 10, 3, 1, 3),
            (0, 10, 3, 2, 6),
            (5, 5, 10, 4, 5),
            (0, 7, 0, 1, 7),
        ];
        for &(min, max, ramp, elapsed, expected) in cases {
            let o = offer(min, max, 1_000, ramp);
            assert_eq!(o.price_at(1_000 + elapsed), U256::from(expected), "{min}..{max}/{ramp}");
        }
    }

    #[test]
    fn time_at_price_table() {
        // (min, max, ramp, price, expected t - biddingStart; None = never)
        let cases: &[(u64, u64, u32, u64, Option<u64>)] = &[
            (100, 1100, 10, 50, Some(0)),
            (100, 1100, 10, 100, Some(0)),
            (100, 1100, 10, 101, Some(1)),
            (100, 1100, 10, 200, Some(1)),
            (100, 1100, 10, 201, Some(2)),
            (100, 1100, 10, 1100, Some(10)),
            (100, 1100, 10, 1101, None),
            (0, 10, 3, 4, Some(2)),
            (0, 10, 3, 10, Some(3)),
            (0, 7, 0, 1, Some(1)),
            (5, 5, 10, 5, Some(0)),
            (5, 5, 10, 6, None),
        ];
        for &(min, max, ramp, price, expected) in cases {
            let o = offer(min, max, 1_000, ramp);
            let got = time_at_price(&o, U256::from(price)).map(|t| t - 1_000);
            assert_eq!(got, expected, "{min}..{max}/{ramp} at {price}");
        }
    }

    #[test]
    fn time_at_price_is_the_exact_inverse_of_the_ramp() {
        // A deterministic pseudo-random walk over offers: small and huge spans, short and long
        // ramps, and every kind of rounding.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let min = U256::from(next() % 1_000) * U256::from(1u64 << (next() % 64));
            let span = U256::from(next() % 10_000) * U256::from(1u64 << (next() % 64));
            let ramp = (next() % 300) as u32;
            let mut o = offer(0, 0, 1_000_000 + next() % 1_000, ramp);
            o.minPrice = min;
            o.maxPrice = min + span;
            for _ in 0..8 {
                let price = if span.is_zero() {
                    min
                } else {
                    min + U256::from(next()) % span + U256::from(1)
                };
                let t = time_at_price(&o, price).expect("reachable");
                assert!(o.price_at(t) >= price, "{o:?} {price} at {t}");
                if price > o.minPrice {
                    assert!(o.price_at(t - 1) < price, "{o:?} {price} at {t}");
                } else {
                    assert_eq!(t, o.biddingStart);
                }
                if ramp <= 300 {
                    assert_eq!(Some(t), scan(&o, price), "{o:?} {price}");
                }
            }
        }
    }

    #[test]
    fn time_at_price_handles_amounts_near_the_market_limit() {
        let mut o = offer(0, 0, u64::MAX - 10, 5);
        o.minPrice = U256::from(u128::MAX) - U256::from(1_000);
        o.maxPrice = U256::from(u128::MAX);
        let t = time_at_price(&o, o.maxPrice).unwrap();
        assert_eq!(t, u64::MAX - 5);
        assert_eq!(o.price_at(t), o.maxPrice);
        assert!(o.price_at(t - 1) < o.maxPrice);
    }

    #[test]
    fn predicates_match_like_the_market() {
        let journal = b"hello world";
        let digest = Predicate::journal_equals(journal);
        let short_digest =
            Predicate { predicateType: PREDICATE_DIGEST_MATCH, data: Bytes::from_static(b"x") };
        let unknown = Predicate { predicateType: 9, data: Bytes::new() };
        let cases: &[(&Predicate, &[u8], bool)] = &[
            (&digest, journal, true),
            (&digest, b"hello worle", false),
            (&digest, b"", false),
            (&short_digest, b"x", false),
            (&Predicate::prefix_match(&b"hello"[..]), journal, true),
            (&Predicate::prefix_match(&b"hello"[..]), b"hell", false),
            (&Predicate::prefix_match(&b"world"[..]), journal, false),
            (&Predicate::prefix_match(Bytes::new()), b"", true),
            (&Predicate::any(), journal, true),
            (&Predicate::any(), b"", true),
            (&unknown, journal, false),
        ];
        for (i, (predicate, journal, expected)) in cases.iter().enumerate() {
            assert_eq!(predicate_matches(predicate, journal), *expected, "case {i}");
        }
    }
}
