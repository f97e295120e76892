using System.Text.Json;
using Pip.Checkpoints;
using static Pip.Core.Tests.Checkpoints.SafeTensorsFixtures;

namespace Pip.Core.Tests.Checkpoints;

public sealed class SafeTensorsWriterTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static List<(SafeTensorSource Source, byte[] Bytes)> Tensors(params (string Name, SafeTensorDType DType, long[] Shape)[] specs)
    {
        var result = new List<(SafeTensorSource, byte[])>();
        var seed = 10;
        foreach (var (name, dtype, shape) in specs)
        {
            var bytes = RandomBytes((int)dtype.ByteLength(shape), seed++);
            result.Add((SafeTensorSource.FromBytes(name, dtype, shape, bytes), bytes));
        }
        return result;
    }

    [Fact]
    public void Write_MixedDtypes_RoundTripsBitExact()
    {
        var tensors = Tensors(
            ("z.f16", SafeTensorDType.F16, [3, 5]),
            ("a.f32", SafeTensorDType.F32, [7]),
            ("m.bf16", SafeTensorDType.BF16, [2, 3, 1]),
            ("i.i64", SafeTensorDType.I64, [2]),
            ("s.scalar", SafeTensorDType.F32, []),
            ("b.bool", SafeTensorDType.Bool, [3]));
        var path = _dir.File("t.safetensors");

        SafeTensorsWriter.Write(path, tensors.Select(t => t.Source));

        using var file = SafeTensorsFile.Open(path);
        file.Metadata.Should().Equal(new Dictionary<string, string> { ["format"] = "pt" });
        (file.DataOffset % 8).Should().Be(0);
        foreach (var (source, bytes) in tensors)
        {
            var info = file.GetInfo(source.Name);
            info.DType.Should().Be(source.DType);
            info.Shape.Should().Equal(source.Shape);
            file.GetBytes(source.Name).ToArray().Should().Equal(bytes);
        }
        Directory.GetFiles(_dir.Path).Should().ContainSingle();
    }

    [Fact]
    public void Write_Layout_OrdersByElementSizeThenNameAndAlignsEachTensor()
    {
        var tensors = Tensors(
            ("c", SafeTensorDType.U8, [3]),
            ("b", SafeTensorDType.F16, [1]),
            ("a", SafeTensorDType.F16, [1]),
            ("d", SafeTensorDType.F64, [1]),
            ("e", SafeTensorDType.F32, [1]));
        var path = _dir.File("order.safetensors");

        SafeTensorsWriter.Write(path, tensors.Select(t => t.Source));

        using var file = SafeTensorsFile.Open(path);
        file.Tensors.Select(t => t.Name).Should().Equal("d", "e", "a", "b", "c");
        file.Tensors.Should().OnlyContain(t => (file.DataOffset + t.Begin) % t.DType.ElementSize() == 0);
        file.Tensors[^1].End.Should().Be(file.FileLength - file.DataOffset, "the data section has no gaps");
    }

    [Fact]
    public void WriteSharded_UnderLimit_WritesSingleFile()
    {
        var tensors = Tensors(("a", SafeTensorDType.F32, [4]), ("b", SafeTensorDType.F32, [4]));

        var written = SafeTensorsWriter.WriteSharded(_dir.Path, tensors.Select(t => t.Source), maxShardBytes: 1000);

        written.Should().Equal("model.safetensors");
        File.Exists(_dir.File(SafeTensorsIndex.FileName)).Should().BeFalse();
    }

    [Fact]
    public void WriteSharded_TinyLimit_SplitsIntoNumberedShardsWithIndex()
    {
        var tensors = Tensors(
            ("model.embed_tokens.weight", SafeTensorDType.BF16, [8, 4]),   // 64 bytes
            ("model.layers.0.w", SafeTensorDType.F16, [16, 2]),            // 64
            ("model.layers.1.w", SafeTensorDType.F32, [4, 4]),             // 64
            ("model.norm.weight", SafeTensorDType.F32, [4]),               // 16
            ("lm_head.weight", SafeTensorDType.BF16, [100]));              // 200 > limit: own shard

        var written = SafeTensorsWriter.WriteSharded(_dir.Path, tensors.Select(t => t.Source), maxShardBytes: 130);

        written.Should().Equal(
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors",
            "model.safetensors.index.json");
        var index = SafeTensorsIndex.Load(_dir.File(SafeTensorsIndex.FileName));
        index.TotalSize.Should().Be(64 + 64 + 64 + 16 + 200);
        index.WeightMap["model.embed_tokens.weight"].Should().Be("model-00001-of-00003.safetensors");
        index.WeightMap["model.layers.0.w"].Should().Be("model-00001-of-00003.safetensors");
        index.WeightMap["model.layers.1.w"].Should().Be("model-00002-of-00003.safetensors");
        index.WeightMap["model.norm.weight"].Should().Be("model-00002-of-00003.safetensors");
        index.WeightMap["lm_head.weight"].Should().Be("model-00003-of-00003.safetensors");

        using var folder = CheckpointFolder.Open(_dir.Path);
        folder.IsSharded.Should().BeTrue();
        folder.TensorNames.Should().BeEquivalentTo(tensors.Select(t => t.Source.Name));
        foreach (var (source, bytes) in tensors)
            folder.GetFile(source.Name).GetBytes(source.Name).ToArray().Should().Equal(bytes);
    }

    [Fact]
    public void WriteSharded_Index_IsSortedJsonWithTotalSize()
    {
        var tensors = Tensors(("b", SafeTensorDType.F32, [4]), ("a", SafeTensorDType.F32, [4]));

        SafeTensorsWriter.WriteSharded(_dir.Path, tensors.Select(t => t.Source), maxShardBytes: 16);

        using var doc = JsonDocument.Parse(File.ReadAllText(_dir.File(SafeTensorsIndex.FileName)));
        doc.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64().Should().Be(32);
        doc.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Name).Should().Equal("a", "b");
    }

    [Fact]
    public void Write_SourceWritesTooFewBytes_ThrowsAndLeavesNoFile()
    {
        var source = new SafeTensorSource("w", SafeTensorDType.F32, [4], (s, _) => s.Write(new byte[12]));
        var path = _dir.File("few.safetensors");

        var act = () => SafeTensorsWriter.Write(path, [source]);

        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain("'w'").And.Contain("wrote 12 bytes");
        Directory.GetFiles(_dir.Path).Should().BeEmpty();
    }

    [Fact]
    public void Write_SourceWritesTooManyBytes_Throws()
    {
        var source = new SafeTensorSource("w", SafeTensorDType.F32, [1], (s, _) => s.Write(new byte[5]));

        var act = () => SafeTensorsWriter.Write(_dir.File("many.safetensors"), [source]);

        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain("more than the 4 bytes");
    }

    [Fact]
    public void Write_DuplicateNames_Throws()
    {
        var tensors = Tensors(("a", SafeTensorDType.F32, [1]), ("a", SafeTensorDType.F16, [2]));

        var act = () => SafeTensorsWriter.Write(_dir.File("dup.safetensors"), tensors.Select(t => t.Source));

        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain("'a' appears twice");
    }

    [Fact]
    public void Write_Cancelled_ThrowsAndKeepsExistingFile()
    {
        var path = _dir.File("c.safetensors");
        File.WriteAllText(path, "old");
        using var cts = new CancellationTokenSource();
        var sources = new[]
        {
            new SafeTensorSource("a", SafeTensorDType.U8, [1], (s, _) => { s.WriteByte(1); cts.Cancel(); }),
            new SafeTensorSource("b", SafeTensorDType.U8, [1], (s, _) => s.WriteByte(2)),
        };

        var act = () => SafeTensorsWriter.Write(path, sources, cancellationToken: cts.Token);

        act.Should().Throw<OperationCanceledException>();
        File.ReadAllText(path).Should().Be("old");
        Directory.GetFiles(_dir.Path).Should().ContainSingle();
    }

    [Fact]
    public void FromBytes_LengthMismatch_Throws()
    {
        var act = () => SafeTensorSource.FromBytes("w", SafeTensorDType.BF16, [3], new byte[4]);
        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain("needs 6 bytes");
    }
}
