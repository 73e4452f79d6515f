//! AES-128 in ECB mode with PKCS#7 padding, as Appendix A prescribes.
//!
//! ECB is weak on its own (equal blocks encrypt equally, blocks can be swapped); the md5
//! check in [`crate::open`] is what makes tampering detectable. We implement exactly what
//! the protocol requires and nothing more.

use aes::Aes128;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};

use crate::OpenError;

const BLOCK: usize = 16;

pub(crate) fn encrypt(key: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes128::new(GenericArray::from_slice(key));
    let pad = BLOCK - plaintext.len() % BLOCK;
    let mut buf = Vec::with_capacity(plaintext.len() + pad);
    buf.extend_from_slice(plaintext);
    // `pad` is 1..=16, so it always fits a byte.
    buf.resize(plaintext.len() + pad, pad as u8);
    for block in buf.chunks_exact_mut(BLOCK) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    buf
}

pub(crate) fn decrypt(key: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK) {
        return Err(OpenError::BlockLength);
    }
    let cipher = Aes128::new(GenericArray::from_slice(key));
    let mut buf = ciphertext.to_vec();
    for block in buf.chunks_exact_mut(BLOCK) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let pad = usize::from(*buf.last().ok_or(OpenError::BlockLength)?);
    if pad == 0
        || pad > BLOCK
        || buf[buf.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return Err(OpenError::Padding);
    }
    buf.truncate(buf.len() - pad);
    Ok(buf)
}
