"""Old-era EXO's ShardDownloader (exo/download/shard_download.py) over model folders already on
disk: old EXO's factory builds every engine with one (`get_inference_engine(name,
shard_downloader)`), engines call `await shard_downloader.ensure_shard(shard, engine_name)` for
the folder, and chatgpt_api calls it to fetch a model before a request. This one downloads
nothing: it finds `<models_dir>/<org>--<name>` (EXO's download layout) or a model id that is a
folder itself, and says clearly when neither exists."""
import os

from .errors import error_for

DEFAULT_MODELS_DIR = os.path.expanduser("~/.cache/exo/downloads")  # old EXO's EXO_HOME/downloads


class _Callbacks:
    """old EXO's AsyncCallbackSystem surface that callers touch: on_progress.register(name)
    returns an object with on_next(callback)."""

    def __init__(self):
        self.callbacks = {}

    def register(self, name):
        cb = self.callbacks.setdefault(name, _Callback())
        return cb

    def trigger_all(self, *args):
        for cb in self.callbacks.values():
            cb.set(*args)


class _Callback:
    def __init__(self):
        self.observers = []

    def on_next(self, fn):
        self.observers.append(fn)

    def set(self, *args):
        for fn in self.observers:
            fn(*args)


class LocalShardDownloader:
    def __init__(self, models_dir=None):
        self.models_dir = models_dir or os.environ.get("EXO_MODELS_DIR") or DEFAULT_MODELS_DIR
        self.on_progress = _Callbacks()

    def model_dir(self, model_id):
        if os.path.isdir(model_id):
            return os.path.abspath(model_id)
        path = os.path.join(self.models_dir, model_id.replace("/", "--"))
        if not os.path.isdir(path):
            raise error_for(-15, f"model '{model_id}' is not on this node: no folder {path} (this downloader "
                                 f"only finds local models)", "ensure_shard")
        return path

    async def ensure_shard(self, shard, inference_engine_name=None):
        """The folder that holds the shard's model (all of it: layers are chosen at load)."""
        path = self.model_dir(shard.model_id)
        self.on_progress.trigger_all(shard, {"status": "complete", "path": path})
        return path

    async def get_shard_download_status(self, inference_engine_name=None):
        """Local models only: nothing is ever in progress."""
        if False:  # an async generator that yields nothing
            yield None
