//! Whatever the guest sends, decoding a frame returns an error instead of panicking or allocating
//! without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    while let Ok(_msg) = kfuzz_wire::read_msg::<_, kfuzz_wire::GuestMsg>(&mut r) {}
});
