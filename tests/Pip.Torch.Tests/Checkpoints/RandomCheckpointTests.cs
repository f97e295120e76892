using Pip.Checkpoints;
using Pip.Torch.Checkpoints;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Checkpoints;

public sealed class RandomCheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "pip-random-ckpt-tests", Guid.NewGuid().ToString("N"));

    public RandomCheckpointTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Dictionary<string, byte[]> Weights(TorchCausalLM model) =>
        model.Model.NamedWeights().ToDictionary(p => p.Key, p => p.Value.contiguous().bytes.ToArray());

    [Fact]
    public void Write_Qwen2WithBiases_LoadsWithHuggingFaceInitialisation()
    {
        using var scope = NewDisposeScope();
        var config = TinyModels.Config(Pip.Checkpoints.DecoderFamily.Qwen2, layers: 2, attentionBias: true) with { VocabSize = 4096 };
        var folder = Path.Combine(_dir, "m");

        var count = RandomCheckpoint.Write(folder, config, seed: 1, ScalarType.BFloat16);

        using var model = TorchCausalLM.Load(folder, ScalarType.Float32);
        model.ParameterCount.Should().Be(count);
        model.ModelConfig.TorchDtype.Should().Be("bfloat16");
        foreach (var (name, p) in model.Model.NamedWeights())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.eq(1).all().item<bool>().Should().BeTrue(name);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.eq(0).all().item<bool>().Should().BeTrue(name);
        }
        var embedding = model.Model.NamedWeights()["model.embed_tokens.weight"];
        embedding.std().item<float>().Should().BeApproximately(0.02f, 0.001f);
        embedding.mean().item<float>().Should().BeApproximately(0f, 0.001f);
    }

    [Fact]
    public void Write_SameSeedAnyShardLayout_SameWeights_OtherSeedDiffers()
    {
        using var scope = NewDisposeScope();
        var config = TinyModels.Config(layers: 3);

        RandomCheckpoint.Write(Path.Combine(_dir, "a"), config, seed: 4);
        RandomCheckpoint.Write(Path.Combine(_dir, "b"), config, seed: 4, options: new CheckpointSaveOptions { MaxShardBytes = 10_000 });
        RandomCheckpoint.Write(Path.Combine(_dir, "c"), config, seed: 5);

        using var a = TorchCausalLM.Load(Path.Combine(_dir, "a"));
        using var b = TorchCausalLM.Load(Path.Combine(_dir, "b"));
        using var c = TorchCausalLM.Load(Path.Combine(_dir, "c"));
        Directory.GetFiles(Path.Combine(_dir, "b"), "model-*.safetensors").Length.Should().BeGreaterThan(1);
        Weights(b).Should().BeEquivalentTo(Weights(a));
        Weights(c)["model.layers.0.mlp.up_proj.weight"].Should().NotEqual(Weights(a)["model.layers.0.mlp.up_proj.weight"]);
    }

    [Fact]
    public void Write_Opt_LoadsStrictly()
    {
        using var scope = NewDisposeScope();
        var folder = Path.Combine(_dir, "opt");

        var count = RandomCheckpoint.Write(folder, TinyOptModels.Config(layers: 2), seed: 2);

        using var model = TorchCausalLM.Load(folder);
        model.ParameterCount.Should().Be(count);
        model.LayerCount.Should().Be(2);
    }

    [Fact]
    public void Write_Cancelled_LeavesNothingBehind()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        var act = () => RandomCheckpoint.Write(Path.Combine(_dir, "x"), TinyModels.Config(), seed: 1, cancellationToken: cts.Token);

        act.Should().Throw<OperationCanceledException>();
        Directory.GetFileSystemEntries(_dir).Should().BeEmpty();
    }
}
