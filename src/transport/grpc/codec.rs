//! The push service's gRPC codec, shared by the server and the load tool:
//! one direction's messages travel as their bytes (the server hands a
//! request's bytes to the borrowing decoder; the load tool sends bytes it
//! encoded once), the other's are prost messages.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use tonic::Status;
use tonic::codec::{DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::pb::aggregation_gateway::v1::PushResponse;

/// A message the codec carries: raw bytes, or a prost message.
pub trait Carried: Send + 'static + Sized {
    /// Writes the message.
    fn put(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status>;
    /// Reads a whole message.
    fn take(src: &mut DecodeBuf<'_>) -> Result<Self, Status>;
}

impl Carried for Bytes {
    fn put(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&self);
        Ok(())
    }

    fn take(src: &mut DecodeBuf<'_>) -> Result<Bytes, Status> {
        Ok(src.copy_to_bytes(src.remaining()))
    }
}

impl Carried for PushResponse {
    fn put(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        prost::Message::encode(&self, dst)
            .map_err(|e| Status::internal(format!("encoding PushResponse: {e}")))
    }

    fn take(src: &mut DecodeBuf<'_>) -> Result<PushResponse, Status> {
        prost::Message::decode(src)
            .map_err(|e| Status::internal(format!("decoding PushResponse: {e}")))
    }
}

/// Encodes `E`, decodes `D`: the server is `Codec<PushResponse, Bytes>`,
/// a raw client `Codec<Bytes, PushResponse>`.
#[derive(Debug)]
pub struct Codec<E, D>(PhantomData<fn() -> (E, D)>);

impl<E, D> Default for Codec<E, D> {
    fn default() -> Self {
        Codec(PhantomData)
    }
}

/// The encoder or decoder of `T`.
#[derive(Debug)]
pub struct Coder<T>(PhantomData<fn() -> T>);

impl<T: Carried> Encoder for Coder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.put(dst)
    }
}

impl<T: Carried> Decoder for Coder<T> {
    type Item = T;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<T>, Status> {
        T::take(src).map(Some)
    }
}

impl<E: Carried, D: Carried> tonic::codec::Codec for Codec<E, D> {
    type Encode = E;
    type Decode = D;
    type Encoder = Coder<E>;
    type Decoder = Coder<D>;

    fn encoder(&mut self) -> Coder<E> {
        Coder(PhantomData)
    }

    fn decoder(&mut self) -> Coder<D> {
        Coder(PhantomData)
    }
}
