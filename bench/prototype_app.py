"""The baseline written the way the eks-neuron prototype was: one FastAPI process under
uvicorn, `POST /<model>` with one multipart file -> one forward pass, `POST /<model>_batch`
with several files -> the whole batch in one forward pass; no dynamic batching, answers
`{label: "probability"}`. Same model, preprocessing and thread count as imgclf.

    python -m uvicorn bench.prototype_app:app --host 127.0.0.1 --port 8100
"""

from __future__ import annotations

import os

import numpy as np
import torch
from fastapi import FastAPI, UploadFile

from imgclf_serve.models import get_spec, imagenet_labels
from imgclf_serve.postprocess import top_k
from imgclf_serve.preprocess import ImageLimits, load_image

MODEL = "efficientnet-lite0"
torch.set_num_threads(int(os.environ.get("PROTOTYPE_THREADS", "2")))
spec = get_spec(MODEL)
model = spec.build(None).eval()
labels = imagenet_labels()
limits = ImageLimits()
app = FastAPI()


def predict(images: list[bytes]) -> list[dict[str, str]]:
    pixels = torch.from_numpy(np.stack([load_image(i, spec.preprocess, limits) for i in images]))
    with torch.inference_mode():
        probabilities = torch.softmax(model(pixels), dim=1).numpy()
    return [{p.label: str(p.probability) for p in top_k(row, 5, labels)} for row in probabilities]


@app.post(f"/{MODEL}")
async def classify(file: UploadFile) -> dict[str, str]:
    return predict([await file.read()])[0]


@app.post(f"/{MODEL}_batch")
async def classify_batch(files: list[UploadFile]) -> list[dict[str, str]]:
    return predict([await file.read() for file in files])
