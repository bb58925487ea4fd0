"""DATA_HAND_SHAKE_REQ validation: media_type bitmask and media_params against the enums (docs/ZOOM.md §4.1, §5)."""

from zoomsim.protocol import MEDIA_ALL, MEDIA_BITS, MEDIA_TYPES, NOT_SUPPORTED_STATUS, Status

L16, G711, G722, OPUS, JPG, PNG, H264 = 1, 2, 3, 4, 5, 6, 7
SAMPLE_RATES_HZ = {0: 8000, 1: 16000, 2: 32000, 3: 48000}
RESOLUTIONS = {1: (640, 360), 2: (1280, 720), 3: (1920, 1080), 4: (2560, 1440)}


class MediaParamError(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_media_type(value, allowed_types):
    """Bitmask → tuple of media type names; 32 (ALL) = every type the app may receive."""
    if not _is_int(value):
        raise MediaParamError(Status.INVALID_MEDIA_TYPE, "media_type must be an integer bitmask")
    if value == MEDIA_ALL:
        return tuple(t for t in MEDIA_TYPES if t in allowed_types)
    if value <= 0 or value >= MEDIA_ALL:
        raise MediaParamError(Status.MEDIA_TYPE_INVALID_VALUE,
                              f"media_type {value} is not a combination of 1, 2, 4, 8, 16 or exactly 32")
    types = tuple(t for t in MEDIA_TYPES if value & MEDIA_BITS[t])
    for media_type in types:
        if media_type not in allowed_types:
            raise MediaParamError(NOT_SUPPORTED_STATUS[media_type], f"the app may not receive {media_type}")
    return types


def confirm_media_params(media_params, types):
    """Apply defaults, validate, and return the confirmed params for the requested types."""
    if media_params is None:
        media_params = {}
    if not isinstance(media_params, dict):
        raise MediaParamError(Status.INVALID_MEDIA_PARAMS, "media_params must be an object")
    confirmed = {}
    for media_type in types:
        confirmed[media_type] = _CONFIRMERS[media_type](media_params.get(media_type))
    return confirmed


def _audio(params):
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_PARAMS, "audio params must be an object")
    result = {"content_type": 2, "sample_rate": 1, "channel": 1, "codec": L16, "data_opt": 1, "send_rate": 20}
    result.update({k: v for k, v in params.items() if v is not None})
    if result["content_type"] not in (1, 2):
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_CONTENT_TYPE,
                              "audio content_type must be 1 (RTP) or 2 (RAW_AUDIO)")
    if not _is_int(result["sample_rate"]) or result["sample_rate"] not in SAMPLE_RATES_HZ:
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_SAMPLE_RATE,
                              "audio sample_rate must be 0 (8k), 1 (16k), 2 (32k) or 3 (48k)")
    if result["channel"] not in (1, 2) or not _is_int(result["channel"]):
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_CHANNEL, "audio channel must be 1 (mono) or 2 (stereo)")
    codec = result["codec"]
    if not _is_int(codec) or codec not in (L16, G711, G722, OPUS):
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_CODEC, "audio codec must be 1 L16, 2 G711, 3 G722 or 4 OPUS")
    if codec in (G722, OPUS):
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_CODEC,
                              "audio codec G722/OPUS is not supported by zoomsim; request 1 (L16) or 2 (G711)")
    if codec == G711 and result["sample_rate"] != 0:
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_SAMPLE_RATE, "G711 audio needs sample_rate 0 (8k)")
    if codec == G711 and result["channel"] != 1:
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_CHANNEL, "G711 audio is mono only")
    if result["data_opt"] not in (1, 2) or not _is_int(result["data_opt"]):
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_DATA_OPT,
                              "audio data_opt must be 1 (mixed) or 2 (per participant)")
    send_rate = result["send_rate"]
    if not _is_int(send_rate) or send_rate < 20 or send_rate % 20:
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_SEND_RATE, "audio send_rate must be a multiple of 20 ms")
    if codec == G711 and send_rate != 20:
        raise MediaParamError(Status.INVALID_MEDIA_AUDIO_SEND_RATE, "G711 audio is sent every 20 ms")
    result["send_rate"] = min(send_rate, 1000)
    return result


def _picture(params, kind):
    statuses = {
        "video": (Status.INVALID_MEDIA_VIDEO_PARAMS, Status.INVALID_MEDIA_VIDEO_CONTENT_TYPE,
                  Status.INVALID_MEDIA_VIDEO_CODEC, Status.INVALID_MEDIA_VIDEO_RESOLUTION,
                  Status.INVALID_MEDIA_VIDEO_FPS),
        "deskshare": (Status.INVALID_MEDIA_DESKSHARE_PARAMS, Status.INVALID_MEDIA_DESKSHARE_CONTENT_TYPE,
                      Status.INVALID_MEDIA_DESKSHARE_CODEC, Status.INVALID_MEDIA_DESKSHARE_RESOLUTION,
                      Status.INVALID_MEDIA_DESKSHARE_FPS),
    }[kind]
    bad_params, bad_content, bad_codec, bad_resolution, bad_fps = statuses
    max_image_fps = 5 if kind == "video" else 1
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise MediaParamError(bad_params, f"{kind} params must be an object")
    params = {k: v for k, v in params.items() if v is not None}
    result = {"content_type": 3, "codec": JPG, "resolution": 2 if kind == "video" else 3, "fps": max_image_fps}
    if kind == "video":
        result["data_opt"] = 3
    if "codec" not in params and _is_int(params.get("fps")) and params["fps"] > max_image_fps:
        params["fps"] = max_image_fps  # no codec and a high rate: Zoom falls back to JPG at the image rate
    result.update(params)
    if result["content_type"] != 3:
        raise MediaParamError(bad_content, f"{kind} content_type must be 3 (RAW_VIDEO)")
    if not _is_int(result["codec"]) or result["codec"] not in (JPG, PNG, H264):
        raise MediaParamError(bad_codec, f"{kind} codec must be 5 JPG, 6 PNG or 7 H264")
    if result["codec"] == H264:
        raise MediaParamError(bad_codec, f"{kind} codec H264 is not supported by zoomsim; request 5 (JPG) or 6 (PNG)")
    if not _is_int(result["resolution"]) or result["resolution"] not in RESOLUTIONS:
        raise MediaParamError(bad_resolution, f"{kind} resolution must be 1 SD, 2 HD, 3 FHD or 4 QHD")
    if not _is_int(result["fps"]) or not 1 <= result["fps"] <= 30:
        raise MediaParamError(bad_fps, f"{kind} fps must be 1..30")
    if result["fps"] > max_image_fps:
        raise MediaParamError(bad_fps, f"{kind} JPG/PNG allow at most {max_image_fps} fps")
    if kind == "video" and result["data_opt"] not in (3, 4, 5):
        raise MediaParamError(Status.INVALID_MEDIA_VIDEO_DATA_OPT,
                              "video data_opt must be 3 (active speaker) or 4 (individual)")
    return result


def _transcript(params):
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise MediaParamError(Status.INVALID_MEDIA_TRANSCRIPT_PARAMS, "transcript params must be an object")
    result = {"content_type": 5, "src_language": 9, "enable_lid": True}
    result.update({k: v for k, v in params.items() if v is not None})
    if result["content_type"] != 5:
        raise MediaParamError(Status.INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE, "transcript content_type must be 5 (TEXT)")
    if not _is_int(result["src_language"]) or not -1 <= result["src_language"] <= 36:
        raise MediaParamError(Status.INVALID_MEDIA_TRANSCRIPT_SOURCE_LANGUAGE, "transcript src_language must be -1..36")
    if not isinstance(result["enable_lid"], bool):
        raise MediaParamError(Status.INVALID_MEDIA_TRANSCRIPT_PARAMS, "transcript enable_lid must be a boolean")
    return result


def _chat(params):
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise MediaParamError(Status.INVALID_MEDIA_CHAT_PARAMS, "chat params must be an object")
    result = {"content_type": 5}
    result.update({k: v for k, v in params.items() if v is not None})
    if result["content_type"] != 5:
        raise MediaParamError(Status.INVALID_MEDIA_CHAT_CONTENT_TYPE, "chat content_type must be 5 (TEXT)")
    return result


_CONFIRMERS = {
    "audio": _audio,
    "video": lambda params: _picture(params, "video"),
    "deskshare": lambda params: _picture(params, "deskshare"),
    "transcript": _transcript,
    "chat": _chat,
}
