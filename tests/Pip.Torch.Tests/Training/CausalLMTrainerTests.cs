using System.ComponentModel.DataAnnotations;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Training;
using Pip.Training;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Training;

public sealed class CausalLMTrainerTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static LlamaConfig Config() => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 24,
        HiddenSize = 16,
        IntermediateSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 1,
        HeadDim = 8,
        RmsNormEps = 1e-5,
        TieWordEmbeddings = true,
    };

    /// <summary>A repetitive stream: the cycle 1 … 12 again and again (perfectly predictable after one token).</summary>
    private static int[] RepetitiveTokens(int count) => Enumerable.Range(0, count).Select(i => 1 + i % 12).ToArray();

    /// <summary>A noisy stream from a fixed seed (for tests that need nonzero gradients throughout).</summary>
    private static int[] NoisyTokens(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => random.Next(2) == 0 ? 1 + i % 12 : random.Next(24)).ToArray();
    }

    private TrainingOptions Options(int maxSteps, bool checkpoints = false) => new()
    {
        LearningRate = 1e-2,
        WarmupSteps = Math.Min(2, maxSteps - 1),
        MaxSteps = maxSteps,
        BatchSize = 4,
        EvaluateEvery = 4,
        LogEvery = 0,
        WeightDecay = 0.1,
        MaxGradientNorm = 1.0,
        Seed = 3,
        CheckpointFolder = checkpoints ? _folder : null,
    };

    [Fact]
    public void Train_RepetitiveCorpus_LossDecreases()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 1);
        var train = new PackedSequences(RepetitiveTokens(16 * 40 + 1), 16);
        var valid = new PackedSequences(RepetitiveTokens(16 * 4 + 1), 16);
        using var trainer = new CausalLMTrainer(model, Options(60));
        var result = trainer.Train(train, valid);

        result.Steps.Should().Be(60);
        result.StopReason.Should().Be(TrainingStopReason.Completed);
        result.History.Should().HaveCount(60);
        result.Validation[0].Step.Should().Be(0);
        result.Validation[0].Loss.Should().BeApproximately(Math.Log(24), 0.3, "an untrained model is near uniform");
        result.FinalValidationLoss.Should().BeLessThan(0.5, "the cycle is predictable");
        result.History.Take(5).Average(h => h.TrainLoss).Should().BeGreaterThan(4 * result.History.TakeLast(5).Average(h => h.TrainLoss));
        result.TokensSeen.Should().Be(60L * 4 * 16);
        result.History.Select(h => h.LearningRate).Should().Equal(Enumerable.Range(0, 60).Select(s => trainer.Schedule.At(s)));
    }

    [Fact]
    public void TryResume_AfterInterruption_MatchesUninterruptedRun()
    {
        var train = new PackedSequences(NoisyTokens(16 * 12 + 1, 5), 16);
        var valid = new PackedSequences(NoisyTokens(16 * 3 + 1, 6), 16);

        // Uninterrupted: 10 steps over 3 batches per epoch, so the run crosses epochs.
        using var straight = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        TrainingResult expected;
        using (var trainer = new CausalLMTrainer(straight, Options(10)))
            expected = trainer.Train(train, valid);

        // Interrupted after step 4 (mid-epoch, just after an evaluation), then resumed in a fresh model and trainer.
        using (var first = LlamaForCausalLM.CreateRandom(Config(), seed: 2))
        using (var cts = new CancellationTokenSource())
        using (var trainer = new CausalLMTrainer(first, Options(10, checkpoints: true)))
        {
            var progress = new SyncProgress(p => { if (p.Step == 4) cts.Cancel(); });
            var act = () => trainer.Train(train, valid, progress, cts.Token);
            act.Should().Throw<OperationCanceledException>();
            trainer.Step.Should().Be(4);
        }
        Directory.Exists(_folder).Should().BeTrue();
        Directory.Exists(_folder + ".tmp").Should().BeFalse();

        using var resumedModel = LlamaForCausalLM.CreateRandom(Config(), seed: 99); // different start: the checkpoint must overwrite it
        using var resumedTrainer = new CausalLMTrainer(resumedModel, Options(10, checkpoints: true));
        resumedTrainer.TryResume().Should().BeTrue();
        resumedTrainer.Step.Should().Be(4);
        var resumed = resumedTrainer.Train(train, valid);

        resumed.Steps.Should().Be(10);
        resumed.TokensSeen.Should().Be(expected.TokensSeen);
        resumed.History.Select(h => h.LearningRate).Should().Equal(expected.History.Select(h => h.LearningRate));
        resumed.History.Select(h => h.TrainLoss).Should().Equal(expected.History.Select(h => h.TrainLoss), (a, b) => Math.Abs(a - b) <= 1e-6);
        resumed.Validation.Select(v => v.Step).Should().Equal(expected.Validation.Select(v => v.Step));
        resumed.Validation.Select(v => v.Loss).Should().Equal(expected.Validation.Select(v => v.Loss), (a, b) => Math.Abs(a - b) <= 1e-6);
        var want = straight.NamedWeights();
        foreach (var (name, p) in resumedModel.NamedWeights())
        {
            var maxDiff = (p - want[name]).abs().max().item<float>();
            maxDiff.Should().BeLessThanOrEqualTo(1e-6f, name);
        }
    }

    [Fact]
    public void TryResume_NoCheckpoint_ReturnsFalse()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        using var trainer = new CausalLMTrainer(model, Options(10, checkpoints: true));
        trainer.TryResume().Should().BeFalse();
        trainer.Step.Should().Be(0);
    }

    [Fact]
    public void TryResume_OtherSchedule_ThrowsNamingStateFile()
    {
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 5), 16);
        using (var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2))
        using (var trainer = new CausalLMTrainer(model, Options(3, checkpoints: true)))
            trainer.Train(train);

        using var other = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        using var otherTrainer = new CausalLMTrainer(other, Options(20, checkpoints: true));
        var act = () => otherTrainer.TryResume();
        act.Should().Throw<InvalidDataException>().WithMessage("*trainer_state.json*other settings*");
    }

    [Fact]
    public void Train_Cancelled_ThrowsBeforeAnyStepAndWritesCheckpoint()
    {
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 5), 16);
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        using var trainer = new CausalLMTrainer(model, Options(10, checkpoints: true));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var act = () => trainer.Train(train, null, null, cts.Token);
        act.Should().Throw<OperationCanceledException>();
        trainer.Step.Should().Be(0);
        File.Exists(Path.Combine(_folder, "trainer_state.json")).Should().BeTrue();
    }

    [Fact]
    public void ClipGradientNorm_LargeGradients_ScalesToBound()
    {
        using var a = zeros(3).requires_grad_();
        using var b = zeros(2, 2).requires_grad_();
        using (var loss = (a * tensor(new float[] { 3, 0, 0 })).sum() + (b * tensor(new float[] { 0, 4, 0, 0 }, [2, 2])).sum())
            loss.backward();
        var norm = CausalLMTrainer.ClipGradientNorm([a, b], maxNorm: 1.0);
        norm.Should().BeApproximately(5.0, 1e-6);
        CausalLMTrainer.GlobalGradientNorm([a, b]).Should().BeApproximately(1.0, 1e-5);
        a.grad!.data<float>().ToArray()[0].Should().BeApproximately(0.6f, 1e-5f);
    }

    [Fact]
    public void ClipGradientNorm_SmallGradients_Untouched()
    {
        using var a = zeros(2).requires_grad_();
        using (var loss = (a * tensor(new float[] { 0.3f, 0.4f })).sum()) loss.backward();
        CausalLMTrainer.ClipGradientNorm([a], maxNorm: 1.0).Should().BeApproximately(0.5, 1e-6);
        a.grad!.data<float>().ToArray().Should().Equal(0.3f, 0.4f);
    }

    [Fact]
    public void Train_WithClipping_NormAtOptimizerStepIsBounded()
    {
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 5), 16);
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        var hook = new NormHook();
        var options = Options(6);
        options.MaxGradientNorm = 0.05; // far below the natural norm of a fresh model
        using var trainer = new CausalLMTrainer(model, options, hooks: [hook]);
        var result = trainer.Train(train);

        hook.NormsBeforeStep.Should().HaveCount(6);
        result.History.Should().OnlyContain(h => h.GradientNorm > 0.05, "the pre-clip norm is reported");
        hook.NormsBeforeStep.Should().OnlyContain(n => n <= 0.05 + 1e-6);
        hook.Completed.Should().Equal(0, 1, 2, 3, 4, 5);
    }

    [Fact]
    public void Train_GradientAccumulation_EqualsOneLargerBatch()
    {
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 5), 16);
        using var big = LlamaForCausalLM.CreateRandom(Config(), seed: 4);
        using var accumulated = LlamaForCausalLM.CreateRandom(Config(), seed: 4);
        var bigOptions = Options(2);
        bigOptions.BatchSize = 8;
        var accOptions = Options(2);
        accOptions.BatchSize = 4;
        accOptions.GradientAccumulationSteps = 2;
        using (var t = new CausalLMTrainer(big, bigOptions)) t.Train(train);
        using (var t = new CausalLMTrainer(accumulated, accOptions)) t.Train(train);
        // Same sequences per step (the epoch order depends on the seed only); different batching changes rounding only.
        var want = big.NamedWeights();
        foreach (var (name, p) in accumulated.NamedWeights())
            (p - want[name]).abs().max().item<float>().Should().BeLessThan(1e-4f, name);
    }

    [Fact]
    public void Ctor_WeightDecayGroups_ExcludeNormsAndEmbeddings()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config() with { TieWordEmbeddings = false }, seed: 1);
        foreach (var (name, p) in model.NamedWeights())
        {
            bool expected = name.EndsWith("proj.weight", StringComparison.Ordinal) || name == "lm_head.weight";
            CausalLMTrainer.UsesWeightDecay(name, p).Should().Be(expected, name);
        }
    }

    [Fact]
    public void Ctor_InvalidOptions_Throws()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 1);
        var act = () => new CausalLMTrainer(model, new TrainingOptions { MaxSteps = 0, BatchSize = -1 });
        act.Should().Throw<ValidationException>().WithMessage("*MaxSteps*BatchSize*");
    }

    [Fact]
    public void Train_FrozenParameters_StayUnchanged()
    {
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 5), 16);
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        var frozen = model.NamedWeights()["model.layers.0.mlp.up_proj.weight"];
        frozen.requires_grad_(false);
        using var before = frozen.clone();
        using var trainer = new CausalLMTrainer(model, Options(3));
        trainer.TrainedParameters.Should().NotContain(p => p.Name == "model.layers.0.mlp.up_proj.weight");
        trainer.Train(train);
        frozen.equal(before).all().item<bool>().Should().BeTrue();
    }

    [Fact]
    public void Train_CustomLoss_IsUsed()
    {
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 5), 16);
        using var model = LlamaForCausalLM.CreateRandom(Config(), seed: 2);
        int calls = 0;
        TrainingLoss loss = (m, batch) =>
        {
            calls++;
            using var ce = CausalLMTrainer.CrossEntropyLoss(m, batch);
            return ce * 2;
        };
        using var trainer = new CausalLMTrainer(model, Options(2), loss: loss);
        var result = trainer.Train(train);
        calls.Should().Be(2);
        result.History[0].TrainLoss.Should().BeApproximately(2 * Math.Log(24), 0.6);
    }

    [Fact]
    public void Permutation_SameSeedAndEpoch_SameOrder_OtherEpoch_Differs()
    {
        var a = CausalLMTrainer.Permutation(50, 7, 0);
        a.Should().Equal(CausalLMTrainer.Permutation(50, 7, 0));
        a.Order().Should().Equal(Enumerable.Range(0, 50));
        a.Should().NotEqual(CausalLMTrainer.Permutation(50, 7, 1));
        a.Should().NotEqual(CausalLMTrainer.Permutation(50, 8, 0));
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    private sealed class NormHook : ITrainingHook
    {
        public List<double> NormsBeforeStep { get; } = [];
        public List<long> Completed { get; } = [];

        public void OnBeforeOptimizerStep(TrainingStepContext context) =>
            NormsBeforeStep.Add(CausalLMTrainer.GlobalGradientNorm(context.Model.parameters()));

        public void OnStepCompleted(TrainingStepContext context) => Completed.Add(context.Step);
    }
}
