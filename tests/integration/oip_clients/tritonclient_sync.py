"""tritonclient.grpc (synchronous) against imgclf: health, metadata, config, repository,
inference with BYTES and FP32 inputs, the classification extension, and the errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import tritonclient.grpc as triton
from common import MODEL, arguments, emit, preprocessed, top1


def error_of(call: Any) -> list[str]:
    try:
        call()
    except triton.InferenceServerException as exc:
        return [str(exc.status()).removeprefix("StatusCode."), exc.message()]
    return ["OK", ""]


def images_input(images: list[bytes], shape: list[int] | None = None) -> triton.InferInput:
    tensor = triton.InferInput("IMAGE", shape or [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_).reshape(shape or [len(images)]))
    return tensor


def main() -> None:
    target, images = arguments()
    client = triton.InferenceServerClient(target)
    seen: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(MODEL),
        "model_ready_v1": client.is_model_ready(MODEL, "1"),
    }
    server = client.get_server_metadata(as_json=True)
    seen["server"] = {"name": server["name"], "extensions": server["extensions"]}
    metadata = client.get_model_metadata(MODEL, as_json=True)
    seen["metadata"] = {
        "versions": metadata["versions"],
        "inputs": [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]],
        "outputs": [(t["name"], t["datatype"]) for t in metadata["outputs"]],
    }
    config = client.get_model_config(MODEL, as_json=True)["config"]
    seen["config"] = {
        "max_batch_size": config["max_batch_size"],
        "instances": config["instance_group"][0]["count"],
        "kind": config["instance_group"][0]["kind"],
        "inputs": [i["name"] for i in config["input"]],
    }
    index = client.get_model_repository_index(as_json=True)
    seen["index"] = [(m["name"], m["version"], m["state"]) for m in index["models"]]

    result = client.infer(MODEL, [images_input(images)], request_id="sync-1")
    seen["bytes"] = {
        "top1": top1(result.as_numpy("LABELS")),
        "probabilities": result.as_numpy("PROBABILITIES")[:, 0],
        "class_index": result.as_numpy("CLASS_INDEX")[:, 0],
        "shape": result.as_numpy("PROBABILITIES").shape,
        "id": result.get_response().id,
    }
    column = client.infer(MODEL, [images_input(images, [len(images), 1])])
    seen["bytes_n_by_1"] = top1(column.as_numpy("LABELS"))

    asked = [triton.InferRequestedOutput("PROBABILITIES", class_count=2)]
    classified = client.infer(MODEL, [images_input(images)], outputs=asked)
    seen["classification"] = [
        [cell.decode() for cell in row] for row in classified.as_numpy("PROBABILITIES")
    ]

    pixels = np.stack([preprocessed(image) for image in images])
    tensor = triton.InferInput("PIXELS", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels)
    fp32 = client.infer(MODEL, [tensor], parameters={"top_k": 3})
    seen["fp32"] = {
        "top1": top1(fp32.as_numpy("LABELS")),
        "probabilities": fp32.as_numpy("PROBABILITIES")[:, 0],
        "shape": fp32.as_numpy("PROBABILITIES").shape,
    }

    wrong_type = triton.InferInput("IMAGE", [1], "FP32")
    wrong_type.set_data_from_numpy(np.zeros(1, dtype=np.float32))
    seen["errors"] = {
        "bad_image": error_of(lambda: client.infer(MODEL, [images_input([images[0], b"no"])])),
        "unknown_model": error_of(lambda: client.infer("nope", [images_input(images[:1])])),
        "unknown_version": error_of(
            lambda: client.infer(MODEL, [images_input(images[:1])], model_version="7")
        ),
        "wrong_datatype": error_of(lambda: client.infer(MODEL, [wrong_type])),
        "statistics": error_of(lambda: client.get_inference_statistics(MODEL)),
    }
    after = client.infer(MODEL, [images_input(images[:1])])
    seen["after_errors"] = top1(after.as_numpy("LABELS"))
    client.close()
    emit(seen)


if __name__ == "__main__":
    main()
