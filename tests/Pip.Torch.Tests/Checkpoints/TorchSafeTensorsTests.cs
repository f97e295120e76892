using Pip.Checkpoints;
using Pip.Torch.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Checkpoints;

public sealed class TorchSafeTensorsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "pip-torch-ckpt-tests", Guid.NewGuid().ToString("N"));

    public TorchSafeTensorsTests() => Directory.CreateDirectory(_dir);

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

    private static LlamaConfig Config() => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 16,
        HiddenSize = 8,
        IntermediateSize = 12,
        NumHiddenLayers = 1,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 2,
        HeadDim = 4,
        TorchDtype = "bfloat16",
    };

    /// <summary>Random tensors of every float type, with special values (NaN, ±Inf, -0, subnormals) mixed in.</summary>
    private static Dictionary<string, Tensor> Sample()
    {
        var g = new Generator(1234);
        Tensor Special(ScalarType t, params long[] shape)
        {
            var x = randn(shape, generator: g) * 3;
            var flat = x.view(-1);
            flat[0] = float.NaN;
            flat[1] = float.PositiveInfinity;
            flat[2] = float.NegativeInfinity;
            flat[3] = -0.0f;
            flat[4] = 1e-40f;
            return x.to(t);
        }
        return new Dictionary<string, Tensor>
        {
            ["model.embed_tokens.weight"] = Special(ScalarType.BFloat16, 16, 8),
            ["model.layers.0.self_attn.q_proj.weight"] = Special(ScalarType.Float16, 8, 8),
            ["model.layers.0.mlp.up_proj.weight"] = Special(ScalarType.Float32, 12, 8),
            ["model.norm.weight"] = Special(ScalarType.Float32, 8),
            ["model.positions"] = arange(5, dtype: ScalarType.Int64),
            ["lm_head.weight"] = Special(ScalarType.BFloat16, 16, 8).t(), // not contiguous
        };
    }

    private static byte[] Bytes(Tensor t) => t.contiguous().bytes.ToArray();

    private static Tensor NanAsZero(Tensor t) => where(t.isnan(), zeros_like(t), t);

    [Theory]
    [InlineData(1_000_000L, 1)]
    [InlineData(300L, 5)]
    public void SaveThenLoad_AllFloatTypes_RoundTripBitExact(long maxShardBytes, int expectedFiles)
    {
        using var scope = NewDisposeScope();
        var tensors = Sample();
        var destination = Path.Combine(_dir, "out");

        TorchSafeTensors.Save(destination, Config(), tensors, new CheckpointSaveOptions { MaxShardBytes = maxShardBytes });

        using var folder = CheckpointFolder.Open(destination);
        folder.ShardFiles.Should().HaveCount(expectedFiles);
        folder.LoadConfig().TorchDtype.Should().Be("bfloat16");
        var loaded = TorchSafeTensors.Load(folder);
        loaded.Keys.Should().BeEquivalentTo(tensors.Keys);
        foreach (var (name, original) in tensors)
        {
            var copy = loaded[name];
            copy.dtype.Should().Be(original.dtype, name);
            copy.shape.Should().Equal(original.shape, name);
            copy.device_type.Should().Be(DeviceType.CPU);
            Bytes(copy).Should().Equal(Bytes(original), name);
        }
    }

    [Fact]
    public void Load_WithTargetType_ConvertsFloatsOnlyAsTorchDoes()
    {
        using var scope = NewDisposeScope();
        var tensors = Sample();
        var path = Path.Combine(_dir, "model.safetensors");
        TorchSafeTensors.SaveFile(path, tensors);

        using var folder = CheckpointFolder.Open(_dir);
        var loaded = TorchSafeTensors.Load(folder, CPU, ScalarType.Float32);

        loaded["model.positions"].dtype.Should().Be(ScalarType.Int64);
        loaded["model.positions"].data<long>().ToArray().Should().Equal(0, 1, 2, 3, 4);
        foreach (var name in tensors.Keys.Where(n => n != "model.positions"))
        {
            loaded[name].dtype.Should().Be(ScalarType.Float32);
            Bytes(loaded[name]).Should().Equal(Bytes(tensors[name].to(ScalarType.Float32)), name);
        }
    }

    [Fact]
    public void Save_WithTargetType_StoresFloatsConverted()
    {
        using var scope = NewDisposeScope();
        var tensors = Sample();
        var path = Path.Combine(_dir, "bf16.safetensors");

        TorchSafeTensors.SaveFile(path, tensors, ScalarType.BFloat16);

        using var file = SafeTensorsFile.Open(path);
        file.GetInfo("model.layers.0.mlp.up_proj.weight").DType.Should().Be(SafeTensorDType.BF16);
        file.GetInfo("model.positions").DType.Should().Be(SafeTensorDType.I64);
        file.GetBytes("model.norm.weight").ToArray().Should().Equal(Bytes(tensors["model.norm.weight"].to(ScalarType.BFloat16)));
    }

    [Fact]
    public void LoadTensor_ScalarAndEmpty_KeepShapes()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(_dir, "model.safetensors");
        TorchSafeTensors.SaveFile(path, new Dictionary<string, Tensor>
        {
            ["scalar"] = tensor(3.5f),
            ["empty"] = zeros(0, 4, dtype: ScalarType.Float16),
        });

        using var folder = CheckpointFolder.Open(_dir);
        var scalar = TorchSafeTensors.LoadTensor(folder, "scalar");
        var empty = TorchSafeTensors.LoadTensor(folder, "empty");

        scalar.shape.Should().BeEmpty();
        scalar.item<float>().Should().Be(3.5f);
        empty.shape.Should().Equal(0, 4);
    }

    [Theory]
    [InlineData(6L)]
    [InlineData(1L)]
    [InlineData(64L)]
    public void SaveThenLoad_InSmallChunks_RoundTripsBitExact(long chunkBytes)
    {
        using var scope = NewDisposeScope();
        var original = randn(new long[] { 7, 5 }, generator: new Generator(7)).to(ScalarType.Float16).t();
        var path = Path.Combine(_dir, "chunks.safetensors");

        SafeTensorsWriter.Write(path, [TorchSafeTensors.ToSource("w", original, null, chunkBytes)]);
        using var file = SafeTensorsFile.Open(path);
        var loaded = TorchSafeTensors.LoadTensor(file, "w", null, null, chunkBytes);

        file.GetBytes("w").ToArray().Should().Equal(Bytes(original));
        Bytes(loaded).Should().Equal(Bytes(original));
        loaded.shape.Should().Equal(5, 7);
    }

    [Theory]
    [InlineData(1L << 30, 1L << 26)]
    [InlineData(6L, 6L)]
    [InlineData(2L, 1L)]
    public void LoadInto_SameAndWiderTypes_FillsDestinationsBitExactInPieces(long chunkBytes, long stagingBytes)
    {
        using var scope = NewDisposeScope();
        var tensors = Sample();
        TorchSafeTensors.SaveFile(Path.Combine(_dir, "model.safetensors"), tensors);
        using var folder = CheckpointFolder.Open(_dir);
        var same = tensors.ToDictionary(p => p.Key, p => zeros(p.Value.shape, p.Value.dtype));
        var wider = tensors.Where(p => p.Value.is_floating_point()).ToDictionary(p => p.Key, p => zeros(p.Value.shape, ScalarType.Float32));
        var strided = zeros(16, 8, dtype: ScalarType.BFloat16).t(); // a non-contiguous destination of lm_head's shape [8, 16]

        TorchSafeTensors.LoadInto(folder, same, chunkBytes, stagingBytes, CancellationToken.None);
        TorchSafeTensors.LoadInto(folder, wider, chunkBytes, stagingBytes, CancellationToken.None);
        TorchSafeTensors.LoadInto(folder, new Dictionary<string, Tensor> { ["lm_head.weight"] = strided }, chunkBytes, stagingBytes, CancellationToken.None);

        foreach (var (name, original) in tensors)
        {
            Bytes(same[name]).Should().Equal(Bytes(original), name);
            if (wider.TryGetValue(name, out var w))
                Bytes(NanAsZero(w)).Should().Equal(Bytes(NanAsZero(original.to(ScalarType.Float32))), name); // NaN payloads may differ by conversion kernel
        }
        Bytes(strided).Should().Equal(Bytes(tensors["lm_head.weight"]));
    }

    [Fact]
    public void LoadInto_ShapeDiffers_ThrowsNamingFileAndTensor()
    {
        using var scope = NewDisposeScope();
        TorchSafeTensors.SaveFile(Path.Combine(_dir, "model.safetensors"), Sample());
        using var folder = CheckpointFolder.Open(_dir);

        var act = () => TorchSafeTensors.LoadInto(folder, new Dictionary<string, Tensor> { ["model.norm.weight"] = zeros(9) });

        act.Should().Throw<CheckpointFormatException>()
            .Which.Message.Should().Contain("model.safetensors").And.Contain("model.norm.weight").And.Contain("[8]").And.Contain("[9]");
    }

    [Fact]
    public void LoadInto_IntegerIntoFloat_ThrowsNamingTypes()
    {
        using var scope = NewDisposeScope();
        TorchSafeTensors.SaveFile(Path.Combine(_dir, "model.safetensors"), Sample());
        using var folder = CheckpointFolder.Open(_dir);

        var act = () => TorchSafeTensors.LoadInto(folder, new Dictionary<string, Tensor> { ["model.positions"] = zeros(5) });

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("I64").And.Contain("Float32");
    }

    [Fact]
    public void Load_Filter_LoadsOnlyAcceptedNames()
    {
        using var scope = NewDisposeScope();
        TorchSafeTensors.SaveFile(Path.Combine(_dir, "model.safetensors"), Sample());

        using var folder = CheckpointFolder.Open(_dir);
        var loaded = TorchSafeTensors.Load(folder, include: n => n.StartsWith("model.layers.", StringComparison.Ordinal));

        loaded.Keys.Should().BeEquivalentTo(["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight"]);
    }

    [Fact]
    public void Save_CancelledMidway_LeavesExistingCheckpointUntouched()
    {
        using var scope = NewDisposeScope();
        var destination = Path.Combine(_dir, "out");
        TorchSafeTensors.Save(destination, Config(), Sample());
        var before = Directory.GetFiles(destination).ToDictionary(f => Path.GetFileName(f)!, File.ReadAllBytes);
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        var act = () => TorchSafeTensors.Save(destination, Config() with { NumHiddenLayers = 2 }, Sample(),
            new CheckpointSaveOptions { Overwrite = true }, cancellationToken: cts.Token);

        act.Should().Throw<OperationCanceledException>();
        Directory.GetFiles(destination).ToDictionary(f => Path.GetFileName(f)!, File.ReadAllBytes).Should().BeEquivalentTo(before);
        Directory.GetFileSystemEntries(_dir).Should().Equal(destination);
    }

    [Fact]
    public void Load_TargetTypeNotFloat_Throws()
    {
        TorchSafeTensors.SaveFile(Path.Combine(_dir, "model.safetensors"), new Dictionary<string, Tensor> { ["a"] = ones(2) });
        using var folder = CheckpointFolder.Open(_dir);

        var act = () => TorchSafeTensors.Load(folder, dtype: ScalarType.Int32);

        act.Should().Throw<ArgumentException>();
    }
}
