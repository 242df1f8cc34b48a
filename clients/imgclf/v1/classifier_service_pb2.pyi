from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_IMAGE: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_ARGUMENT: _ClassVar[ErrorReason]
    ERROR_REASON_MODEL_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_OVERLOADED: _ClassVar[ErrorReason]
    ERROR_REASON_REPLICA_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_CPU: _ClassVar[DeviceKind]
    DEVICE_KIND_GPU: _ClassVar[DeviceKind]
    DEVICE_KIND_NEURON_CORE: _ClassVar[DeviceKind]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_CPU: _ClassVar[Backend]
    BACKEND_CUDA: _ClassVar[Backend]
    BACKEND_NEURON: _ClassVar[Backend]
    BACKEND_NEURONX: _ClassVar[Backend]
    BACKEND_NULL: _ClassVar[Backend]
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INVALID_IMAGE: ErrorReason
ERROR_REASON_INVALID_ARGUMENT: ErrorReason
ERROR_REASON_MODEL_NOT_FOUND: ErrorReason
ERROR_REASON_OVERLOADED: ErrorReason
ERROR_REASON_REPLICA_UNAVAILABLE: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_CPU: DeviceKind
DEVICE_KIND_GPU: DeviceKind
DEVICE_KIND_NEURON_CORE: DeviceKind
BACKEND_UNSPECIFIED: Backend
BACKEND_CPU: Backend
BACKEND_CUDA: Backend
BACKEND_NEURON: Backend
BACKEND_NEURONX: Backend
BACKEND_NULL: Backend

class ClassifyRequest(_message.Message):
    __slots__ = ("image", "model", "top_k")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    model: str
    top_k: int
    def __init__(self, image: _Optional[bytes] = ..., model: _Optional[str] = ..., top_k: _Optional[int] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("model", "predictions", "served_by")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    model: str
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    served_by: ServedBy
    def __init__(self, model: _Optional[str] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., served_by: _Optional[_Union[ServedBy, _Mapping]] = ...) -> None: ...

class ClassifyBatchRequest(_message.Message):
    __slots__ = ("images", "model", "top_k")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    model: str
    top_k: int
    def __init__(self, images: _Optional[_Iterable[bytes]] = ..., model: _Optional[str] = ..., top_k: _Optional[int] = ...) -> None: ...

class ClassifyBatchResponse(_message.Message):
    __slots__ = ("model", "items")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    model: str
    items: _containers.RepeatedCompositeFieldContainer[ClassifyBatchItem]
    def __init__(self, model: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ClassifyBatchItem, _Mapping]]] = ...) -> None: ...

class ClassifyBatchItem(_message.Message):
    __slots__ = ("predictions", "served_by", "error")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    served_by: ServedBy
    error: ItemError
    def __init__(self, predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., served_by: _Optional[_Union[ServedBy, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "reason", "index")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reason: ErrorReason
    index: int
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[_Union[ErrorReason, str]] = ..., index: _Optional[int] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("label", "class_index", "probability")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    label: str
    class_index: int
    probability: float
    def __init__(self, label: _Optional[str] = ..., class_index: _Optional[int] = ..., probability: _Optional[float] = ...) -> None: ...

class ServedBy(_message.Message):
    __slots__ = ("replica_id", "device_kind", "core_ids", "backend", "node_id")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_KIND_FIELD_NUMBER: _ClassVar[int]
    CORE_IDS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    device_kind: DeviceKind
    core_ids: _containers.RepeatedScalarFieldContainer[int]
    backend: Backend
    node_id: str
    def __init__(self, replica_id: _Optional[str] = ..., device_kind: _Optional[_Union[DeviceKind, str]] = ..., core_ids: _Optional[_Iterable[int]] = ..., backend: _Optional[_Union[Backend, str]] = ..., node_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model", "limits")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    default_model: str
    limits: Limits
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., default_model: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "input_height", "input_width", "num_classes", "backend", "device_kind", "replicas", "max_batch_size", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_KIND_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    input_height: int
    input_width: int
    num_classes: int
    backend: Backend
    device_kind: DeviceKind
    replicas: int
    max_batch_size: int
    version: str
    def __init__(self, name: _Optional[str] = ..., input_height: _Optional[int] = ..., input_width: _Optional[int] = ..., num_classes: _Optional[int] = ..., backend: _Optional[_Union[Backend, str]] = ..., device_kind: _Optional[_Union[DeviceKind, str]] = ..., replicas: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., version: _Optional[str] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_images_per_batch", "max_image_bytes", "max_image_pixels", "max_request_bytes")
    MAX_IMAGES_PER_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_images_per_batch: int
    max_image_bytes: int
    max_image_pixels: int
    max_request_bytes: int
    def __init__(self, max_images_per_batch: _Optional[int] = ..., max_image_bytes: _Optional[int] = ..., max_image_pixels: _Optional[int] = ..., max_request_bytes: _Optional[int] = ...) -> None: ...
