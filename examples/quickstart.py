from imgclf import ClassifierClient

with ClassifierClient() as client:  # $IMGCLF_TARGET, or 127.0.0.1:9000
    result = client.classify("tests/data/images/tiger.jpg", top_k=3)
    print(result.top.label, f"{result.top.probability:.2f}", result.served_by)
    batch = client.classify_batch(["tests/data/images/kitten_small.jpg", b"not an image"])
    print([item.top.label if item.ok else item.message for item in batch])
