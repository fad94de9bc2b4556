//! Whatever arrives on the guest channel, decoding a frame returns an error instead of panicking or
//! allocating without bound, and a decoded message encodes back to a frame that decodes the same.
#![no_main]
use kfuzz_wire::{read_msg, write_msg, GuestMsg, HostMsg};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut r = data;
    while let Ok(msg) = read_msg::<_, T>(&mut r) {
        let mut frame = Vec::new();
        write_msg(&mut frame, &msg).expect("a decoded message encodes");
        let again: T = read_msg(&mut &frame[..]).expect("an encoded message decodes");
        assert_eq!(again, msg);
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the direction: the host reads guest messages, the executor host ones.
    let Some((dir, rest)) = data.split_first() else {
        return;
    };
    if dir & 1 == 0 {
        round_trip::<GuestMsg>(rest);
    } else {
        round_trip::<HostMsg>(rest);
    }
});
