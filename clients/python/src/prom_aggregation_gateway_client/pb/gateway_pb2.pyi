from prom_aggregation_gateway_client.pb import metrics_pb2 as _metrics_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushRequest(_message.Message):
    __slots__ = ("metric_families", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METRIC_FAMILIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    metric_families: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.MetricFamily]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, metric_families: _Optional[_Iterable[_Union[_metrics_pb2.MetricFamily, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: int
    def __init__(self, series: _Optional[int] = ...) -> None: ...
