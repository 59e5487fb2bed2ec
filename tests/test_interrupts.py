"""pipeline/interrupts.py: SIGINT and SIGTERM become Interrupted, which run_cli turns into exit
130 / 143 and one line; Lightning's Trainer.fit lets it through instead of exiting 1."""

import signal

import lightning as L
import pytest
import torch

from pipeline.cli import run_cli
from pipeline.interrupts import Interrupted, deferred, handled, keeping


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_raises_interrupted_and_the_old_handler_comes_back(signum, code):
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as caught, handled():
        signal.raise_signal(signum)
    assert caught.value.exit_code == code and caught.value.signum == signum
    assert signal.getsignal(signum) is before


def test_a_signal_during_deferred_waits_for_the_block_to_end():
    done = []
    with pytest.raises(Interrupted), handled():
        with deferred():
            signal.raise_signal(signal.SIGINT)
            done.append("the block ran to its end")
        done.append("never")
    assert done == ["the block ran to its end"]


def test_the_innermost_block_says_what_was_kept():
    with pytest.raises(Interrupted) as caught, handled(), keeping("outer"), keeping(lambda: "in"):
        signal.raise_signal(signal.SIGTERM)
    assert caught.value.kept == "in"


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, 130, "interrupted (Ctrl-C): 3 files kept\n"),
        (signal.SIGTERM, 143, "interrupted (SIGTERM): 3 files kept\n"),
    ],
)
def test_run_cli_exits_with_the_signals_code_and_one_line(signum, code, line, capsys):
    @keeping("3 files kept")
    def command() -> int:
        signal.raise_signal(signum)
        return 0

    assert run_cli(command) == code
    captured = capsys.readouterr()
    assert captured.err == line and captured.out == ""


class _Stop(L.Callback):
    def on_train_epoch_end(self, trainer, module):
        signal.raise_signal(signal.SIGINT)


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, _):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_lets_the_interrupt_through_instead_of_exiting_1(tmp_path):
    """Lightning turns a KeyboardInterrupt inside fit into sys.exit(1); Interrupted passes."""
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(8, 2)))
    trainer = L.Trainer(
        max_epochs=5,
        callbacks=[_Stop()],
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(Interrupted), handled():
        trainer.fit(_Tiny(), data)
    assert trainer.current_epoch == 0  # it stopped in the first epoch
