"""A double of EXO's runner (src/exo/worker/runner/runner.py at b5375f8), written from its source
to drive the adapter as EXO does: the same state machine (Idle -> Connecting/Connected ->
Loading -> Loaded -> WarmingUp -> Ready -> Running -> Ready ... -> ShuttingDown -> Shutdown), the
same calls and checks (isinstance Builder / Engine, `load_progress.layers_loaded` / `.total`,
`case CancelledResponse()` / `case FinishedResponse()`, every other result sent as
ChunkGenerated(command_id, chunk)), and the same work queue read between engine steps.

Differences, each because a test cannot block forever: tasks come from a queue.Queue that the
test fills, and an empty queue outside a generation ends main() (EXO's reader thread would wait);
`after_step(runner)` runs after every engine step so a test can act mid-stream (a cancel on the
cancel channel, a new task). Event and status objects are recorded as tuples (TaskStatusUpdated,
TaskAcknowledged; statuses in `statuses`)."""
import dataclasses
import queue

from exo_ipex.exo_types import (Builder, CancelledResponse, ChunkGenerated, Engine, FinishedResponse, TaskId,
                                TextGeneration)


@dataclasses.dataclass
class ConnectToGroup:
    task_id: TaskId = dataclasses.field(default_factory=TaskId)


@dataclasses.dataclass
class LoadModel:
    task_id: TaskId = dataclasses.field(default_factory=TaskId)


@dataclasses.dataclass
class StartWarmup:
    task_id: TaskId = dataclasses.field(default_factory=TaskId)


@dataclasses.dataclass
class Shutdown:
    task_id: TaskId = dataclasses.field(default_factory=TaskId)


class EndOfStream(Exception):
    """anyio.EndOfStream, which EXO's MpReceiver raises when it meets the sender's close."""


class ClosedResourceError(Exception):
    """anyio.ClosedResourceError, which EXO's MpReceiver raises once it is closed."""


_END = object()


class Channel:
    """EXO's MpSender / MpReceiver pair (utils/channels.py) in one process: send(), close() (the
    sender's: an end-of-stream marker goes in), and the receiver's collect(), which the MLX engine
    calls on its cancel receiver: every item waiting now, without blocking; like EXO's, it raises
    EndOfStream when it reaches the marker (dropping the items it had gathered, as
    MpReceiver.collect does) and ClosedResourceError on every call after that."""

    def __init__(self):
        self.items = []
        self.closed = False

    def send(self, item):
        if self.closed:
            raise ClosedResourceError()
        self.items.append(item)

    def close(self):
        self.items.append(_END)

    def collect(self):
        if self.closed:
            raise ClosedResourceError()
        out = []
        while self.items:
            item = self.items.pop(0)
            if item is _END:
                self.closed = True
                raise EndOfStream()
            out.append(item)
        return out


class RunnerDouble:
    def __init__(self, bound_instance, builder, event_sender, after_step=None):
        self.bound_instance = bound_instance
        self.shard_metadata = bound_instance.bound_shard
        self.event_sender = event_sender
        self.generator = builder
        self.seen = set()
        self.active_tasks = {}
        self.work = queue.Queue()
        self.statuses = []
        self.after_step = after_step or (lambda runner: None)
        self.update_status(("RunnerIdle",))

    def update_status(self, status):
        self.current_status = status
        self.statuses.append(status)

    def send_task_status(self, task_id, status):
        self.event_sender.send(("TaskStatusUpdated", task_id, status))

    def acknowledge_task(self, task):
        self.event_sender.send(("TaskAcknowledged", task.task_id))

    def main(self):
        while True:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                return
            if item.task_id in self.seen:
                continue
            self.seen.add(item.task_id)
            self.handle_first_task(item)
            if self.current_status[0] == "RunnerShutdown":
                return

    def handle_first_task(self, task):
        self.send_task_status(task.task_id, "Running")
        status = self.current_status[0]
        match task:
            case ConnectToGroup() if status == "RunnerIdle":
                assert isinstance(self.generator, Builder)
                self.update_status(("RunnerConnecting",))
                self.acknowledge_task(task)
                self.generator.connect(self.bound_instance)
                self.send_task_status(task.task_id, "Complete")
                self.update_status(("RunnerConnected",))
            case LoadModel() if isinstance(self.generator, Builder) and status in ("RunnerConnected", "RunnerIdle"):
                total_layers = self.shard_metadata.end_layer - self.shard_metadata.start_layer
                self.update_status(("RunnerLoading", 0, total_layers))
                self.acknowledge_task(task)
                for load_progress in self.generator.load(self.bound_instance):
                    self.update_status(("RunnerLoading", load_progress.layers_loaded, load_progress.total))
                self.generator = self.generator.build()
                self.send_task_status(task.task_id, "Complete")
                self.update_status(("RunnerLoaded",))
            case StartWarmup() if status == "RunnerLoaded":
                assert isinstance(self.generator, Engine)
                self.update_status(("RunnerWarmingUp",))
                self.acknowledge_task(task)
                self.generator.warmup()
                self.send_task_status(task.task_id, "Complete")
                self.update_status(("RunnerReady",))
            case TextGeneration() if status == "RunnerReady":
                self.handle_generation_tasks(task)
            case Shutdown():
                self.shutdown(task)
            case _:
                raise ValueError(f"Received {task.__class__.__name__} outside of state machine in {status=}")

    def shutdown(self, task):
        self.update_status(("RunnerShuttingDown",))
        self.acknowledge_task(task)
        self.generator.close()
        self.send_task_status(task.task_id, "Complete")
        self.update_status(("RunnerShutdown",))

    def submit_generation(self, task):
        assert isinstance(self.generator, Engine)
        self.active_tasks[task.task_id] = task
        self.generator.submit(task)

    def handle_generation_tasks(self, starting_task):
        assert isinstance(self.generator, Engine)
        self.update_status(("RunnerRunning",))
        self.acknowledge_task(starting_task)
        self.seen.add(starting_task.task_id)
        self.submit_generation(starting_task)
        while self.active_tasks:
            results = self.generator.step()
            finished = []
            for task_id, result in results:
                match result:
                    case CancelledResponse():
                        finished.append(task_id)
                    case FinishedResponse():
                        self.send_task_status(task_id, "Complete")
                        finished.append(task_id)
                    case other:
                        self.event_sender.send(ChunkGenerated(command_id=self.active_tasks[task_id].command_id,
                                                              chunk=other))
            for task_id in finished:
                self.active_tasks.pop(task_id, None)
            self.after_step(self)
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                continue
            if item.task_id in self.seen:
                continue
            self.seen.add(item.task_id)
            match item:
                case TextGeneration():
                    self.acknowledge_task(item)
                    self.submit_generation(item)
                case Shutdown():
                    self.shutdown(item)
                    return
                case _:
                    raise ValueError(f"Received {item.__class__.__name__} outside of state machine")
        self.update_status(("RunnerReady",))
