using System.ComponentModel.DataAnnotations;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Tests.Models;
using Pip.Torch.Training;
using Pip.Torch.Training.Lora;
using Pip.Training;

namespace Pip.Torch.Tests.Training.Lora;

public sealed class LoraRecoveryTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-lora-recovery-" + Guid.NewGuid().ToString("N"));

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

    /// <summary>A tiny repeated "text": the cycle 1 … 12 again and again.</summary>
    private static int[] RepeatedTokens(int count) => Enumerable.Range(0, count).Select(i => 1 + i % 12).ToArray();

    /// <summary>A noisy stream from a fixed seed (nonzero gradients throughout).</summary>
    private static int[] NoisyTokens(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => random.Next(2) == 0 ? 1 + i % 12 : random.Next(24)).ToArray();
    }

    private LoraOptions Options(int steps, double dropout = 0, bool checkpoints = false, bool merge = true) => new()
    {
        Rank = 4,
        Alpha = 8,
        Dropout = dropout,
        MergeAfterTraining = merge,
        Training = new TrainingOptions
        {
            LearningRate = 2e-2,
            WarmupSteps = 2,
            MaxSteps = steps,
            BatchSize = 4,
            EvaluateEvery = 5,
            LogEvery = 0,
            WeightDecay = 0,
            Seed = 3,
            CheckpointFolder = checkpoints ? _folder : null,
        },
    };

    [Fact]
    public async Task RunAsync_RepeatedText_ReducesTheLossAndMergesIntoAPlainModel()
    {
        using var model = new TorchCausalLM(LlamaForCausalLM.CreateRandom(Config(), seed: 1, std: 0.2), tokenizer: null);
        var baseParameters = model.ParameterCount;
        var train = new PackedSequences(RepeatedTokens(16 * 16 + 1), 16);
        var valid = new PackedSequences(RepeatedTokens(16 * 4 + 1), 16);

        var result = await LoraRecovery.RunAsync(model, train, valid, Options(30));

        result.Merged.Should().BeTrue();
        result.Adapters.Should().BeNull();
        result.AdaptedModules.Should().Be(2 * 7);
        result.TrainableParameters.Should().BeGreaterThan(0).And.BeLessThan(baseParameters);
        result.Training.Steps.Should().Be(30);
        result.InitialValidationLoss.Should().NotBeNull();
        result.FinalValidationLoss.Should().BeLessThan(0.5 * result.InitialValidationLoss!.Value, "the cycle is predictable");
        result.Training.History.Take(3).Average(h => h.TrainLoss).Should().BeGreaterThan(result.Training.History.TakeLast(3).Average(h => h.TrainLoss));

        model.ParameterCount.Should().Be(baseParameters, "merging keeps the model's shape");
        model.Module.NamedWeights().Keys.Should().NotContain(k => k.Contains("lora", StringComparison.Ordinal));
        model.Module.parameters().Should().OnlyContain(p => p.requires_grad);
        var sequences = Enumerable.Range(0, valid.Count).Select(i => (IReadOnlyList<int>)valid[i].ToArray()).ToArray();
        var mergedLoss = await model.ComputeLossAsync(sequences);
        mergedLoss.Should().BeApproximately(result.FinalValidationLoss!.Value, 1e-4, "the merged model computes what the adapted one did");
    }

    [Fact]
    public async Task RunAsync_NoMerge_ReturnsTheAttachedAdapters()
    {
        using var model = new TorchCausalLM(LlamaForCausalLM.CreateRandom(Config(), seed: 1), tokenizer: null);
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 2), 16);
        var result = await LoraRecovery.RunAsync(model, train, null, Options(3, merge: false));
        result.Merged.Should().BeFalse();
        using var adapters = result.Adapters!;
        adapters.IsAttached.Should().BeTrue();
        adapters.Adapters.Should().HaveCount(result.AdaptedModules);
        result.InitialValidationLoss.Should().BeNull();
        model.Module.named_parameters().Where(p => p.parameter.requires_grad).Should().OnlyContain(p => p.name.Contains(".lora_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_CancelledThenResumed_MatchesAnUninterruptedRun()
    {
        var train = new PackedSequences(NoisyTokens(16 * 12 + 1, 5), 16);
        var valid = new PackedSequences(NoisyTokens(16 * 3 + 1, 6), 16);

        using var straight = new TorchCausalLM(LlamaForCausalLM.CreateRandom(Config(), seed: 2), tokenizer: null);
        var expected = await LoraRecovery.RunAsync(straight, train, valid, Options(10));

        using var interrupted = new TorchCausalLM(LlamaForCausalLM.CreateRandom(Config(), seed: 2), tokenizer: null);
        var before = interrupted.Module.NamedWeights().ToDictionary(p => p.Key, p => p.Value.clone());
        using (var cts = new CancellationTokenSource())
        {
            var progress = new SyncProgress(p => { if (p.Step == 4) cts.Cancel(); });
            var act = () => LoraRecovery.RunAsync(interrupted, train, valid, Options(10, checkpoints: true), progress, cancellationToken: cts.Token);
            await act.Should().ThrowAsync<OperationCanceledException>();
        }

        // The cancelled run left the model as it was and a checkpoint holding only the adapters.
        foreach (var (name, p) in interrupted.Module.NamedWeights())
            TinyModels.Same(p, before[name]).Should().BeTrue(name);
        interrupted.Module.named_parameters().Should().NotContain(p => p.name.Contains("lora", StringComparison.Ordinal));
        using (var file = SafeTensorsFile.Open(Path.Combine(_folder, "model.safetensors")))
            file.Tensors.Should().HaveCount(2 * 2 * 7).And.OnlyContain(t => t.Name.Contains(".lora_", StringComparison.Ordinal));

        var resumed = await LoraRecovery.RunAsync(interrupted, train, valid, Options(10, checkpoints: true));
        resumed.Resumed.Should().BeTrue();
        resumed.Training.Steps.Should().Be(10);
        resumed.Training.History.Select(h => h.TrainLoss).Should().Equal(expected.Training.History.Select(h => h.TrainLoss), (a, b) => Math.Abs(a - b) <= 1e-6);
        var want = straight.Module.NamedWeights();
        foreach (var (name, p) in interrupted.Module.NamedWeights())
            (p - want[name]).abs().max().item<float>().Should().BeLessThanOrEqualTo(1e-6f, name);
        foreach (var w in before.Values) w.Dispose();
    }

    [Fact]
    public async Task RunAsync_InvalidOptions_ThrowsBeforeTouchingTheModel()
    {
        using var model = new TorchCausalLM(LlamaForCausalLM.CreateRandom(Config(), seed: 1), tokenizer: null);
        var train = new PackedSequences(NoisyTokens(16 * 8 + 1, 2), 16);
        var options = Options(3);
        options.Rank = -1;
        var act = () => LoraRecovery.RunAsync(model, train, null, options);
        await act.Should().ThrowAsync<ValidationException>().WithMessage("*Rank*");
        model.Module.parameters().Should().OnlyContain(p => p.requires_grad);
    }

    [Fact]
    public async Task RunAsync_FewerSequencesThanABatch_Throws()
    {
        using var model = new TorchCausalLM(LlamaForCausalLM.CreateRandom(Config(), seed: 1), tokenizer: null);
        var train = new PackedSequences(NoisyTokens(16 * 2 + 1, 2), 16);
        var act = () => LoraRecovery.RunAsync(model, train, null, Options(3));
        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*2 sequences*one batch (4)*");
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
