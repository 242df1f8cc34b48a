import os
from pathlib import Path

import numpy as np
import tritonclient.grpc as triton  # pip install 'tritonclient[grpc]'

client = triton.InferenceServerClient(os.environ.get("IMGCLF_TARGET", "127.0.0.1:9000"))
print(client.is_model_ready("efficientnet-lite0"))
images = [Path("tests/data/images", name).read_bytes() for name in ("tiger.jpg", "strawberry.jpg")]
image = triton.InferInput("IMAGE", [len(images)], "BYTES")  # encoded JPEG/PNG/... files
image.set_data_from_numpy(np.array(images, dtype=np.object_))
result = client.infer("efficientnet-lite0", [image], parameters={"top_k": 3})
print(result.as_numpy("LABELS")[:, 0], result.as_numpy("PROBABILITIES").shape)
top2 = [triton.InferRequestedOutput("PROBABILITIES", class_count=2)]  # Triton's classification
print(client.infer("efficientnet-lite0", [image], outputs=top2).as_numpy("PROBABILITIES")[0])
