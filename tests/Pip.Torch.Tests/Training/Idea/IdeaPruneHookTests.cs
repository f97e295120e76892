using System.ComponentModel.DataAnnotations;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Training;
using Pip.Torch.Training.Idea;
using Pip.Training;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Training.Idea;

public sealed class IdeaPruneHookTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-idea-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static LlamaConfig Config(int intermediate = 32) => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 24,
        HiddenSize = 16,
        IntermediateSize = intermediate,
        NumHiddenLayers = 2,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 1,
        HeadDim = 8,
        RmsNormEps = 1e-5,
        TieWordEmbeddings = true,
    };

    private static int[] NoisyTokens(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => random.Next(2) == 0 ? 1 + i % 12 : random.Next(24)).ToArray();
    }

    private TrainingOptions Training(int maxSteps = 14, bool checkpoints = false) => new()
    {
        LearningRate = 1e-2,
        WarmupSteps = 2,
        MaxSteps = maxSteps,
        BatchSize = 4,
        EvaluateEvery = 5,
        LogEvery = 0,
        Seed = 3,
        CheckpointFolder = checkpoints ? _folder : null,
    };

    private static IdeaPruneOptions Pruning() => new()
    {
        TargetIntermediateSize = 12,
        StartStep = 3,
        EndStep = 9,
        UpdateInterval = 2,
        EmaBeta = 0.7,
        Shape = WidthScheduleShape.Cubic,
    };

    [Fact]
    public void OnGradientsReady_HandBuiltGradients_ScoresFollowEmaDefinitionAndMasksLowest()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config(intermediate: 8), seed: 4, std: 0.5);
        var hook = new IdeaPruneHook(model, new IdeaPruneOptions
        {
            TargetIntermediateSize = 5, StartStep = 0, EndStep = 3, UpdateInterval = 1, EmaBeta = 0.6, Shape = WidthScheduleShape.Linear,
        });
        hook.Schedule.KeptWidthAt(0).Should().Be(7);
        hook.Schedule.KeptWidthAt(1).Should().Be(6);
        hook.Schedule.KeptWidthAt(2).Should().Be(5);

        var weights = model.Layers.Select(l => new[] { l.Mlp.GateProj.weight!, l.Mlp.UpProj.weight!, l.Mlp.DownProj.weight! }.Select(ToArray).ToArray()).ToArray();
        double[][]? expected = null;
        var expectedMasked = model.Layers.Select(_ => new bool[8]).ToArray();
        for (int step = 0; step < 3; step++)
        {
            // The gradient of Σ w·R is R: hand-chosen gradients.
            model.zero_grad();
            using var g = new Generator((ulong)(100 + step));
            var grads = new List<double[][]>();
            Tensor total = zeros(1);
            foreach (var layer in model.Layers)
            {
                var perLayer = new List<double[]>();
                foreach (var w in new[] { layer.Mlp.GateProj.weight!, layer.Mlp.UpProj.weight!, layer.Mlp.DownProj.weight! })
                {
                    var r = randn(w.shape, generator: g);
                    perLayer.Add(ToArray(r));
                    total = total + (w * r).sum();
                }
                grads.Add(perLayer.ToArray());
            }
            total.backward();
            hook.OnGradientsReady(new TrainingStepContext(model, step, 1e-3, 0, double.NaN));

            // fresh[l][c] = sqrt(Σ_j (Wg Rg)[c,j]² + Σ_j (Wu Ru)[c,j]² + Σ_i (Wd Rd)[i,c]²), hidden 16, width 8.
            var fresh = new double[2][];
            for (int l = 0; l < 2; l++)
            {
                fresh[l] = new double[8];
                for (int c = 0; c < 8; c++)
                {
                    double sum = 0;
                    for (int j = 0; j < 16; j++)
                    {
                        sum += Math.Pow(weights[l][0][c * 16 + j] * grads[l][0][c * 16 + j], 2);
                        sum += Math.Pow(weights[l][1][c * 16 + j] * grads[l][1][c * 16 + j], 2);
                        sum += Math.Pow(weights[l][2][j * 8 + c] * grads[l][2][j * 8 + c], 2);
                    }
                    fresh[l][c] = Math.Sqrt(sum);
                }
            }
            expected = expected is null ? fresh : expected.Select((s, l) => s.Select((v, c) => 0.6 * v + 0.4 * fresh[l][c]).ToArray()).ToArray();

            int keep = 7 - step;
            for (int l = 0; l < 2; l++)
            {
                var alive = Enumerable.Range(0, 8).Where(c => !expectedMasked[l][c]).OrderBy(c => expected[l][c]).ToList();
                foreach (var c in alive.Take(alive.Count - keep)) expectedMasked[l][c] = true;
            }

            var scores = hook.Scores!;
            for (int l = 0; l < 2; l++)
                for (int c = 0; c < 8; c++)
                    ((double)scores[l][c]).Should().BeApproximately(expected[l][c], 1e-5 * Math.Max(1, expected[l][c]), $"step {step}, layer {l}, neuron {c}");
            hook.Masked.Should().BeEquivalentTo(expectedMasked, o => o.WithStrictOrdering(), $"step {step}");
            hook.KeptWidth.Should().Be(keep);

            // The masked neurons' gradients are zeroed (before clipping) ...
            for (int l = 0; l < 2; l++)
            {
                var mlp = model.Layers[l].Mlp;
                for (int c = 0; c < 8; c++)
                {
                    if (!expectedMasked[l][c]) continue;
                    mlp.GateProj.weight!.grad![c].abs().max().item<float>().Should().Be(0f);
                    mlp.DownProj.weight!.grad![.., c].abs().max().item<float>().Should().Be(0f);
                }
            }
        }
        hook.UpdateCount.Should().Be(3);

        // ... and their weights after the optimizer step.
        hook.OnStepCompleted(new TrainingStepContext(model, 2, 1e-3, 0, 0));
        for (int l = 0; l < 2; l++)
        {
            var mlp = model.Layers[l].Mlp;
            for (int c = 0; c < 8; c++)
            {
                float gate = mlp.GateProj.weight![c].abs().max().item<float>();
                float up = mlp.UpProj.weight![c].abs().max().item<float>();
                float down = mlp.DownProj.weight![.., c].abs().max().item<float>();
                if (expectedMasked[l][c]) new[] { gate, up, down }.Should().AllBeEquivalentTo(0f);
                else gate.Should().BeGreaterThan(0f);
            }
        }
    }

    [Fact]
    public void ApplyPruning_AfterTraining_PhysicalModelGivesMaskedModelsLogits()
    {
        var train = new PackedSequences(NoisyTokens(12 * 16 + 1, 5), 12);
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        var hook = new IdeaPruneHook(model, Pruning());
        using (var trainer = new CausalLMTrainer(model, Training(), hooks: [hook]))
            trainer.Train(train);
        hook.IsComplete.Should().BeTrue();
        hook.KeptWidth.Should().Be(12);

        using var ids = tensor(NoisyTokens(2 * 12, 8).Select(t => (long)t).ToArray(), [2, 12]);
        model.eval();
        using var masked = model.Logits(ids);
        var config = hook.ApplyPruning();
        using var pruned = model.Logits(ids);

        config.IntermediateSize.Should().Be(12);
        config.LayerShapes.Should().BeNull("a uniform width gives a standard configuration");
        model.Layers.Should().OnlyContain(l => l.Mlp.IntermediateSize == 12);
        (pruned - masked).abs().max().item<float>().Should().BeLessThan(1e-5f);
        masked.abs().max().item<float>().Should().BeGreaterThan(1e-2f);
        FluentActions.Invoking(() => hook.ApplyPruning()).Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public void Train_EnlargeAndPruneRun_OneScheduleNeverRisingAfterWarmupAndMasksOnlyGrow()
    {
        var train = new PackedSequences(NoisyTokens(12 * 16 + 1, 5), 12);
        var valid = new PackedSequences(NoisyTokens(12 * 4 + 1, 6), 12);
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        var recorder = new MaskRecorder();
        var options = Training();
        var result = IdeaPrune.Train(model, options, Pruning(), train, valid, extraHooks: [recorder]);

        result.Pruned.Should().BeTrue();
        result.Config.IntermediateSize.Should().Be(12);
        var rates = result.Training.History.Select(h => h.LearningRate).ToList();
        rates.Should().HaveCount(14);
        rates.Should().Equal(Enumerable.Range(0, 14).Select(s => options.CreateSchedule().At(s)), "one schedule over the whole run");
        for (int s = options.WarmupSteps; s < rates.Count; s++) rates[s].Should().BeLessThanOrEqualTo(rates[s - 1], $"step {s}");

        // The recorder saw the masked weights exactly zero after every step, and the masks only grew.
        recorder.Violations.Should().BeEmpty();
        recorder.Widths.Should().Equal(Enumerable.Range(0, 14).Select(s => recorder.Schedule!.KeptWidthAt(s)));
        recorder.Widths.Should().BeInDescendingOrder();
        recorder.Widths[0].Should().Be(32);
        recorder.Widths[^1].Should().Be(12);
    }

    [Fact]
    public void Train_InterruptedInsideWindowAndResumed_MatchesUninterruptedRun()
    {
        var train = new PackedSequences(NoisyTokens(12 * 16 + 1, 5), 12);
        var valid = new PackedSequences(NoisyTokens(12 * 4 + 1, 6), 12);

        using var straight = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        var expected = IdeaPrune.Train(straight, Training(), Pruning(), train, valid);

        using (var first = LlamaForCausalLM.CreateRandom(Config(), seed: 2))
        using (var cts = new CancellationTokenSource())
        {
            var progress = new SyncProgress(p => { if (p.Step == 6) cts.Cancel(); });
            var act = () => IdeaPrune.Train(first, Training(checkpoints: true), Pruning(), train, valid, progress: progress, cancellationToken: cts.Token);
            act.Should().Throw<OperationCanceledException>();
        }
        File.Exists(Path.Combine(_folder, IdeaPruneConstants.StateFileName)).Should().BeTrue();

        using var resumedModel = LlamaForCausalLM.CreateRandom(Config(), seed: 99);
        var resumed = IdeaPrune.Train(resumedModel, Training(checkpoints: true), Pruning(), train, valid, resume: true);

        resumed.Pruned.Should().BeTrue();
        resumed.Config.Should().Be(expected.Config);
        resumed.Training.History.Select(h => h.LearningRate).Should().Equal(expected.Training.History.Select(h => h.LearningRate));
        resumed.Training.History.Select(h => h.TrainLoss).Should().Equal(expected.Training.History.Select(h => h.TrainLoss), (a, b) => Math.Abs(a - b) <= 1e-6);
        for (int l = 0; l < 2; l++)
            resumed.Scores![l].Should().Equal(expected.Scores![l], (a, b) => Math.Abs(a - b) <= 1e-6 * Math.Max(1, Math.Abs(b)));
        var want = straight.NamedWeights();
        foreach (var (name, p) in resumedModel.NamedWeights())
            (p - want[name]).abs().max().item<float>().Should().BeLessThanOrEqualTo(1e-6f, name);
    }

    [Fact]
    public void LoadState_OtherSettings_ThrowsNamingFile()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        Directory.CreateDirectory(_folder);
        new IdeaPruneHook(model, Pruning()).SaveState(_folder);
        var other = Pruning();
        other.EmaBeta = 0.5;
        var act = () => new IdeaPruneHook(model, other).LoadState(_folder);
        act.Should().Throw<InvalidDataException>().WithMessage($"*{IdeaPruneConstants.StateFileName}*other IDEA Prune settings*");
        var missing = () => new IdeaPruneHook(model, Pruning()).LoadState(Path.Combine(_folder, "nowhere"));
        missing.Should().Throw<InvalidDataException>().WithMessage("*missing*");
    }

    [Fact]
    public void Ctor_InvalidSettings_Throw()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        var wide = Pruning();
        wide.TargetIntermediateSize = 32;
        FluentActions.Invoking(() => new IdeaPruneHook(model, wide)).Should().Throw<ArgumentException>().WithMessage("*target intermediate size (32)*");
        var backwards = Pruning();
        backwards.EndStep = 3;
        FluentActions.Invoking(() => new IdeaPruneHook(model, backwards)).Should().Throw<ValidationException>().WithMessage("*EndStep (3)*");
        var late = Pruning();
        late.EndStep = 20;
        var train = new PackedSequences(NoisyTokens(12 * 16 + 1, 5), 12);
        FluentActions.Invoking(() => IdeaPrune.Train(model, Training(), late, train)).Should().Throw<ArgumentException>().WithMessage("*ends at step 20*14 steps*");
    }

    [Fact]
    public void Accumulate_TwoBatches_IsMeanOfPerBatchScores_AndPruneToWidthKeepsHighest()
    {
        var data = new PackedSequences(NoisyTokens(12 * 4 + 1, 5), 12);
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2, std: 0.3);
        var perBatch = new List<float[][]>();
        for (int b = 0; b < 2; b++)
        {
            model.zero_grad();
            using var batch = data.CreateBatch([2 * b, 2 * b + 1], CPU);
            CausalLMTrainer.CrossEntropyLoss(model, batch).backward();
            perBatch.Add(FfnSensitivity.FromGradients(model));
        }
        var mean = FfnSensitivity.Accumulate(model, data, batchCount: 2, batchSize: 2);
        for (int l = 0; l < 2; l++)
            mean[l].Should().Equal(perBatch[0][l].Zip(perBatch[1][l], (a, b) => (a + b) / 2), (a, b) => Math.Abs(a - b) <= 1e-6 * Math.Max(1, Math.Abs(b)));

        var gateBefore = model.Layers[1].Mlp.GateProj.weight!.clone();
        var best = Enumerable.Range(0, 32).OrderByDescending(c => mean[1][c]).Take(10).Order().ToArray();
        var config = FfnSensitivity.PruneToWidth(model, mean, keep: 10);
        config.IntermediateSize.Should().Be(10);
        using var index = tensor(best.Select(c => (long)c).ToArray());
        (model.Layers[1].Mlp.GateProj.weight! - gateBefore.index_select(0, index)).abs().max().item<float>().Should().Be(0f);
    }

    [Fact]
    public void LowestChannels_TiesAndExclusions_LowerIndexFirstAndSkipsExcluded()
    {
        FfnSensitivity.LowestChannels([3f, 1f, 1f, 0f, 5f], keep: 2, excluded: [false, false, false, true, false]).Should().Equal(1, 2);
        FfnSensitivity.LowestChannels([2f, 2f, 2f], keep: 2).Should().Equal(0);
        FluentActions.Invoking(() => FfnSensitivity.LowestChannels([1f, 2f], keep: 3)).Should().Throw<ArgumentOutOfRangeException>();
    }

    private static double[] ToArray(Tensor t) => t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    /// <summary>Runs after the IDEA hook: checks that masked neurons are exactly zero and that masks only grow.</summary>
    private sealed class MaskRecorder : ITrainingHook
    {
        private HashSet<(int Layer, int Channel)> _zero = [];

        public List<int> Widths { get; } = [];

        public List<string> Violations { get; } = [];

        public GradualWidthSchedule? Schedule { get; private set; } = new(32, 12, 3, 9, 2, WidthScheduleShape.Cubic);

        public void OnStepCompleted(TrainingStepContext context)
        {
            var zero = new HashSet<(int, int)>();
            int width = -1;
            for (int l = 0; l < context.Model.Layers.Count; l++)
            {
                var mlp = context.Model.Layers[l].Mlp;
                using var noGrad = no_grad();
                var rows = (mlp.GateProj.weight!.abs().sum(dim: 1) + mlp.UpProj.weight!.abs().sum(dim: 1) + mlp.DownProj.weight!.abs().sum(dim: 0)).data<float>().ToArray();
                for (int c = 0; c < rows.Length; c++) if (rows[c] == 0f) zero.Add((l, c));
                int alive = rows.Count(r => r != 0f);
                if (width >= 0 && alive != width) Violations.Add($"step {context.Step}: layers keep different widths");
                width = alive;
            }
            if (!_zero.IsSubsetOf(zero)) Violations.Add($"step {context.Step}: a masked neuron came back");
            _zero = zero;
            Widths.Add(width);
        }
    }
}
