"""The calls each system under test is driven with, as `loadgen.Call`s."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import aiohttp
import grpc

from imgclf.v1 import classifier_service_pb2 as pb
from imgclf.v1 import classifier_service_pb2_grpc as pb_grpc
from imgclf_tools.loadgen import Call


def imgclf_classify(channel: grpc.aio.Channel, images: Sequence[bytes], model: str = "") -> Call:
    stub = pb_grpc.ClassifierServiceStub(channel)
    requests = itertools.cycle([pb.ClassifyRequest(image=image, model=model) for image in images])

    async def call() -> int:
        await stub.Classify(next(requests), timeout=120)
        return 1

    return call


def imgclf_batch(
    channel: grpc.aio.Channel, images: Sequence[bytes], per_call: int, model: str = ""
) -> Call:
    stub = pb_grpc.ClassifierServiceStub(channel)
    batch = [images[i % len(images)] for i in range(per_call)]
    request = pb.ClassifyBatchRequest(images=batch, model=model)

    async def call() -> int:
        reply = await stub.ClassifyBatch(request, timeout=300)
        return sum(1 for item in reply.items if not item.HasField("error"))

    return call


def imgclf_call(
    channel: grpc.aio.Channel, images: Sequence[bytes], per_call: int, model: str = ""
) -> Call:
    """Classify when `per_call` is 1, else ClassifyBatch of `per_call` images."""
    if per_call == 1:
        return imgclf_classify(channel, images, model)
    return imgclf_batch(channel, images, per_call, model)


def prototype_post(
    session: aiohttp.ClientSession, url: str, images: Sequence[bytes], per_call: int
) -> Call:
    """POST multipart like the eks-neuron prototype (`curl -F file=@...`)."""
    cycle = itertools.cycle(images)
    field = "file" if per_call == 1 else "files"

    async def call() -> int:
        form = aiohttp.FormData()
        for n in range(per_call):
            form.add_field(field, next(cycle), filename=f"{n}.jpg", content_type="image/jpeg")
        async with session.post(url, data=form) as reply:
            reply.raise_for_status()
            await reply.read()
        return per_call

    return call
