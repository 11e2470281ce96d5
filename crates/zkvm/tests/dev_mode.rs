//! Fake (dev-mode) receipts are refused whatever the environment (finding 8 of the market
//! security review): with `RISC0_DEV_MODE=1`, risc0's own default verification accepts a
//! `FakeReceipt` for any claim; `verify` and `verify_integrity` must not.
//!
//! This binary holds exactly one test because it sets a process-wide environment variable
//! before anything else runs.

use risc0_zkvm::{FakeReceipt, InnerReceipt, Receipt, ReceiptClaim};
use tiffin_guests::ECHO;
use tiffin_zkvm::{ImageId, verify, verify_integrity};

#[test]
fn fake_receipts_are_refused_even_with_risc0_dev_mode_set() {
    // SAFETY: the only test in this binary, set before any other thread reads the environment.
    unsafe { std::env::set_var("RISC0_DEV_MODE", "1") };
    let image = ImageId::from_words(ECHO.image_id);
    let journal = b"any claim at all".to_vec();
    let fake = FakeReceipt::new(ReceiptClaim::ok(image.0, journal.clone()));
    let receipt = Receipt::new(InnerReceipt::Fake(fake), journal);

    assert!(receipt.verify(image.0).is_ok(), "risc0's default context is in dev mode here");
    for refused in [verify(&receipt, image), verify_integrity(&receipt)] {
        let error = refused.expect_err("a fake receipt is refused");
        assert!(error.to_string().starts_with("TIFFIN-ZKVM-006"), "{error}");
    }
}
