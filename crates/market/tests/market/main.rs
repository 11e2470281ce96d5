//! Behaviour of the proof market contracts on a real local chain: one anvil per test.

mod support;

mod accounts;
mod attestors;
mod batch;
mod cancelling;
mod encoding;
mod fulfilment;
mod locking;
mod pricing;
mod slashing;
