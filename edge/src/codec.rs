//! A tonic codec for [`DynamicMessage`]s, so the edge calls any RPC of the descriptor set without
//! generated stubs.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Encodes requests as they are; decodes responses as `response` messages.
#[derive(Debug, Clone)]
pub struct DynamicCodec {
    response: MessageDescriptor,
}

impl DynamicCodec {
    pub fn new(response: MessageDescriptor) -> Self {
        Self { response }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.response.clone())
    }
}

#[derive(Debug)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|error| Status::internal(format!("encoding the request: {error}")))
    }
}

#[derive(Debug)]
pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|error| Status::internal(format!("decoding the response: {error}")))
    }
}

/// Like [`DynamicCodec`] for request streams that may fail on the way (a raw upload over its
/// cap, or a client that went away): an `Err` item fails the request body, so the upstream sees
/// its stream reset, never a clean end of a truncated upload.
#[derive(Debug, Clone)]
pub struct FallibleCodec {
    response: MessageDescriptor,
}

impl FallibleCodec {
    pub fn new(response: MessageDescriptor) -> Self {
        Self { response }
    }
}

impl Codec for FallibleCodec {
    type Encode = Result<DynamicMessage, Status>;
    type Decode = DynamicMessage;
    type Encoder = FallibleEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        FallibleEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.response.clone())
    }
}

#[derive(Debug)]
pub struct FallibleEncoder;

impl Encoder for FallibleEncoder {
    type Item = Result<DynamicMessage, Status>;
    type Error = Status;

    fn encode(
        &mut self,
        item: Result<DynamicMessage, Status>,
        dst: &mut EncodeBuf<'_>,
    ) -> Result<(), Status> {
        DynamicEncoder.encode(item?, dst)
    }
}
