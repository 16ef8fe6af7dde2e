using System.Runtime.ExceptionServices;
using GTStore.Core.Messages;
using GTStore.Protocol.Resp;

namespace GTStore.Node.Resp;

/// <summary>The commands: each starts here, on the connection's loop, and replies now or later.</summary>
internal sealed partial class RespConnection
{
    /// <summary>Most backend requests one multi-key command (DEL, EXISTS, MGET, MSET) has in flight.</summary>
    private const int MultiKeyConcurrencyMax = 256;

    private void Start(RespCommandSpec? spec, RespCommand command)
    {
        if (spec is null)
        {
            Reply(RespErrors.UnknownCommand(command));
            return;
        }

        LastCommand = spec.Name;
        if (!spec.ArityFits(command.Count) || (spec.Kind == RespCommandKind.MSet && command.Count % 2 == 0)
            || (spec.Kind == RespCommandKind.Ping && command.Count > 2))
        {
            Reply(RespErrors.WrongArity(spec.Name));
            return;
        }

        if (spec.HasKeys && CheckSizes(spec, command) is { } oversize)
        {
            Reply(oversize);
            return;
        }

        switch (spec.Kind)
        {
            case RespCommandKind.Get:
                ReplyLater(PendingKind.Get, Send(ClientOp.Get, command[1], null), spec.Name);
                break;
            case RespCommandKind.Set:
                StartSet(command);
                break;
            case RespCommandKind.SetNx:
                ReplyLater(SetNxAsync(command[1], command[2]), spec.Name);
                break;
            case RespCommandKind.Del or RespCommandKind.Unlink:
                ReplyLater(DelAsync(command.Args), spec.Name);
                break;
            case RespCommandKind.Exists:
                ReplyLater(ExistsAsync(command.Args), spec.Name);
                break;
            case RespCommandKind.MGet:
                ReplyLater(MGetAsync(command.Args), spec.Name);
                break;
            case RespCommandKind.MSet:
                ReplyLater(MSetAsync(command.Args), spec.Name);
                break;
            case RespCommandKind.Ping:
                Reply(command.Count == 1 ? RespReply.Simple("PONG") : RespReply.Bulk(command[1]));
                break;
            case RespCommandKind.Echo:
                Reply(RespReply.Bulk(command[1]));
                break;
            case RespCommandKind.Info:
                ReplyLater(InfoAsync(RespInfo.Sections(command)), spec.Name);
                break;
            case RespCommandKind.DbSize:
                ReplyLater(DbSizeAsync(), spec.Name);
                break;
            case RespCommandKind.Command:
                Reply(RespInfo.Command(command));
                break;
            case RespCommandKind.Config:
                Reply(RespInfo.Config(command, _server));
                break;
            case RespCommandKind.Client:
                Reply(Client(command));
                break;
            case RespCommandKind.Hello:
                Reply(Hello(command));
                break;
            case RespCommandKind.Cluster:
                StartCluster(command);
                break;
            case RespCommandKind.Select:
                Reply(Select(command));
                break;
            case RespCommandKind.Auth:
                Reply(Auth(command));
                break;
            default:
                throw new InvalidOperationException($"command {spec.Name} has no handler");
        }
    }

    /// <summary>An error naming the limit when a key or a value is over it; null when all fit.</summary>
    private RespReply? CheckSizes(RespCommandSpec spec, RespCommand command)
    {
        int end = spec.KeysEnd(command.Count);
        for (int i = spec.FirstKey; i < end; i += spec.KeyStep)
        {
            if (command[i].Length > _backend.KeyBytesMax)
            {
                return RespReply.Error($"ERR key of {command[i].Length} bytes exceeds the limit of {_backend.KeyBytesMax} bytes");
            }

            bool isValue = spec.Kind is RespCommandKind.MSet or RespCommandKind.Set;
            if (isValue && command[i + 1].Length > _backend.ValueBytesMax)
            {
                return RespReply.Error($"ERR value of {command[i + 1].Length} bytes exceeds the limit of {_backend.ValueBytesMax} bytes");
            }
        }

        return null;
    }

    /// <summary>
    /// SET key value [NX|XX] [GET] [KEEPTTL]. Expiry options are refused: GTStore has no TTLs.
    /// NX, XX and GET read the key and then write it: two quorum operations, not one atomic
    /// step, so two clients racing on one key can both see it absent.
    /// </summary>
    private void StartSet(RespCommand command)
    {
        bool nx = false;
        bool xx = false;
        bool get = false;
        for (int i = 3; i < command.Count; i++)
        {
            if (command.ArgIs(i, "NX") && !xx)
            {
                nx = true;
            }
            else if (command.ArgIs(i, "XX") && !nx)
            {
                xx = true;
            }
            else if (command.ArgIs(i, "GET"))
            {
                get = true;
            }
            else if (command.ArgIs(i, "KEEPTTL"))
            {
                // No key has a time to live, so keeping it is what happens anyway.
            }
            else if ((command.ArgIs(i, "EX") || command.ArgIs(i, "PX") || command.ArgIs(i, "EXAT") || command.ArgIs(i, "PXAT"))
                && i + 1 < command.Count)
            {
                Reply(RespReply.Error($"ERR SET {RespErrors.Text(command[i]).ToUpperInvariant()} (expiry) is not supported by GTStore: keys do not expire"));
                return;
            }
            else
            {
                Reply(RespErrors.Syntax);
                return;
            }
        }

        if (nx || xx || get)
        {
            ReplyLater(SetConditionalAsync(command[1], command[2], nx, xx, get), "set");
        }
        else
        {
            ReplyLater(PendingKind.Set, Send(ClientOp.Put, command[1], command[2]), "set");
        }
    }

    private Task<ClientReply> Send(ClientOp op, byte[] key, byte[]? value)
    {
        try
        {
            return _backend.Execute(new ClientRequest(op, key, value), _closing.Token);
        }
        catch (Exception e)
        {
            return Task.FromException<ClientReply>(e);
        }
    }

    private async Task<RespReply> SetConditionalAsync(byte[] key, byte[] value, bool nx, bool xx, bool get)
    {
        var current = await Send(ClientOp.Get, key, null).ConfigureAwait(false);
        if (current.Status is not (ReplyStatus.Ok or ReplyStatus.NotFound))
        {
            return RespErrors.Of(current);
        }

        var old = ValueOf(current);
        if ((nx && old is not null) || (xx && old is null))
        {
            return get ? RespReply.Bulk(old) : RespReply.NullBulk;
        }

        var put = await Send(ClientOp.Put, key, value).ConfigureAwait(false);
        if (put.Status != ReplyStatus.Ok)
        {
            return RespErrors.Of(put);
        }

        return get ? RespReply.Bulk(old) : RespReply.Ok;
    }

    /// <summary>SETNX: SET NX answering 1 when it wrote and 0 when the key existed (not atomic either).</summary>
    private async Task<RespReply> SetNxAsync(byte[] key, byte[] value)
    {
        var reply = await SetConditionalAsync(key, value, nx: true, xx: false, get: false).ConfigureAwait(false);
        return reply.IsError ? reply : RespReply.Integer(reply.IsNull ? 0 : 1);
    }

    /// <summary>DEL: reads each distinct key, deletes those that exist, and counts the deletes.</summary>
    private async Task<RespReply> DelAsync(byte[][] args)
    {
        var keys = args.Skip(1).Distinct(ByteArrayComparer.Instance).ToArray();
        var reads = await ExecuteAllAsync(ClientOp.Get, keys, null).ConfigureAwait(false);
        if (FirstError(reads) is { } readError)
        {
            return readError;
        }

        var existing = keys.Where((_, i) => ValueOf(reads[i]) is not null).ToArray();
        var deletes = await ExecuteAllAsync(ClientOp.Delete, existing, null).ConfigureAwait(false);
        return FirstError(deletes) ?? RespReply.Integer(deletes.Count(r => r.Status == ReplyStatus.Ok));
    }

    /// <summary>EXISTS: how many of the keys exist, a key named twice counted twice (as Redis).</summary>
    private async Task<RespReply> ExistsAsync(byte[][] args)
    {
        var reads = await ExecuteAllAsync(ClientOp.Get, args[1..], null).ConfigureAwait(false);
        return FirstError(reads) ?? RespReply.Integer(reads.Count(r => ValueOf(r) is not null));
    }

    private async Task<RespReply> MGetAsync(byte[][] args)
    {
        var reads = await ExecuteAllAsync(ClientOp.Get, args[1..], null).ConfigureAwait(false);
        return FirstError(reads) ?? RespReply.Array([.. reads.Select(r => RespReply.Bulk(ValueOf(r)))]);
    }

    /// <summary>MSET: every pair written concurrently (not atomically); for a key named twice the last value wins.</summary>
    private async Task<RespReply> MSetAsync(byte[][] args)
    {
        var last = new Dictionary<byte[], byte[]>(ByteArrayComparer.Instance);
        for (int i = 1; i < args.Length; i += 2)
        {
            last[args[i]] = args[i + 1];
        }

        var writes = await ExecuteAllAsync(ClientOp.Put, [.. last.Keys], [.. last.Values]).ConfigureAwait(false);
        return FirstError(writes) ?? RespReply.Ok;
    }

    private async Task<RespReply> InfoAsync(RespInfo.SectionSet sections)
    {
        var stats = sections.NeedsStats ? await _backend.Stats(_closing.Token).ConfigureAwait(false) : null;
        return RespReply.Text(RespInfo.Info(sections, _server, stats));
    }

    /// <summary>DBSIZE: the live keys this node holds as a replica (deleted ones not counted), not the cluster's total.</summary>
    private async Task<RespReply> DbSizeAsync()
    {
        var stats = await _backend.Stats(_closing.Token).ConfigureAwait(false);
        return RespReply.Integer(RespInfo.LiveKeys(stats));
    }

    /// <summary>Runs one operation per key, at most <see cref="MultiKeyConcurrencyMax"/> at a time.</summary>
    private async Task<ClientReply[]> ExecuteAllAsync(ClientOp op, byte[][] keys, byte[][]? values)
    {
        var replies = new ClientReply[keys.Length];
        var window = new Task<ClientReply>[Math.Min(keys.Length, MultiKeyConcurrencyMax)];
        Exception? failure = null;
        for (int start = 0; start < keys.Length; start += window.Length)
        {
            int count = Math.Min(window.Length, keys.Length - start);
            for (int i = 0; i < count; i++)
            {
                window[i] = Send(op, keys[start + i], values?[start + i]);
            }

            for (int i = 0; i < count; i++)
            {
                try
                {
                    replies[start + i] = await window[i].ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    failure ??= e;
                }
            }

            if (failure is not null)
            {
                ExceptionDispatchInfo.Throw(failure);
            }
        }

        return replies;
    }

    private static RespReply? FirstError(ClientReply[] replies)
    {
        foreach (var reply in replies)
        {
            if (reply.Status is not (ReplyStatus.Ok or ReplyStatus.NotFound))
            {
                return RespErrors.Of(reply);
            }
        }

        return null;
    }

    private static byte[]? ValueOf(ClientReply reply) =>
        reply.Status == ReplyStatus.Ok ? reply.Value?.Value : null;

    private static RespReply GetReply(ClientReply reply) => reply.Status switch
    {
        ReplyStatus.Ok => RespReply.Bulk(reply.Value?.Value),
        ReplyStatus.NotFound => RespReply.NullBulk,
        _ => RespErrors.Of(reply),
    };

    private static RespReply SetReply(ClientReply reply) =>
        reply.Status == ReplyStatus.Ok ? RespReply.Ok : RespErrors.Of(reply);

    private void StartCluster(RespCommand command)
    {
        string sub = RespErrors.Text(command[1]).ToUpperInvariant();
        int arity = RespCluster.Arity(sub);
        if (arity == 0)
        {
            Reply(RespErrors.UnknownSubcommand(command[1], "CLUSTER"));
        }
        else if (command.Count != arity)
        {
            Reply(RespErrors.WrongArity("cluster|" + sub.ToLowerInvariant()));
        }
        else if (RespCluster.Local(sub, command) is { } local)
        {
            Reply(local);
        }
        else if (_backend.Cluster is not { } view)
        {
            Reply(RespReply.Error("ERR This instance has cluster support disabled"));
        }
        else
        {
            ReplyLater(ClusterAsync(sub, view), "cluster");
        }
    }

    private async Task<RespReply> ClusterAsync(string sub, Func<CancellationToken, Task<RespClusterView>> view) =>
        RespCluster.Answer(sub, await view(_closing.Token).ConfigureAwait(false));

    private RespReply Select(RespCommand command)
    {
        if (!RespInfo.TryParseInteger(command[1], out long db))
        {
            return RespErrors.NotInteger;
        }

        return db == 0 ? RespReply.Ok : RespReply.Error("ERR DB index is out of range");
    }

    private RespReply Client(RespCommand command)
    {
        string sub = RespErrors.Text(command[1]).ToUpperInvariant();
        (int arity, string name) = sub switch
        {
            "SETNAME" => (3, "client|setname"),
            "GETNAME" or "ID" or "INFO" or "LIST" => (2, "client|" + sub.ToLowerInvariant()),
            "SETINFO" => (4, "client|setinfo"),
            _ => (0, ""),
        };
        if (arity == 0)
        {
            return RespErrors.UnknownSubcommand(command[1], "CLIENT");
        }

        if (command.Count != arity)
        {
            return RespErrors.WrongArity(name);
        }

        switch (sub)
        {
            case "SETNAME":
                return SetName(command[2]);
            case "GETNAME":
                return Name.Length == 0 ? RespReply.NullBulk : RespReply.Text(Name);
            case "ID":
                return RespReply.Integer(Id);
            case "INFO":
                return RespReply.Text(RespInfo.ClientLine(this));
            case "LIST":
                return RespReply.Text(string.Concat(_server.Connections.OrderBy(c => c.Id).Select(RespInfo.ClientLine)));
            default:
                return SetInfo(command[2], command[3]);
        }
    }

    private RespReply SetName(byte[] name)
    {
        if (!RespInfo.IsClientName(name))
        {
            return RespReply.Error("ERR Client names cannot contain spaces, newlines or special characters.");
        }

        Name = RespErrors.Text(name);
        return RespReply.Ok;
    }

    private RespReply SetInfo(byte[] attribute, byte[] value)
    {
        if (!RespInfo.IsClientName(value) && value.Length > 0)
        {
            return RespReply.Error("ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.");
        }

        switch (RespErrors.Text(attribute).ToUpperInvariant())
        {
            case "LIB-NAME":
                LibraryName = RespErrors.Text(value);
                return RespReply.Ok;
            case "LIB-VER":
                LibraryVersion = RespErrors.Text(value);
                return RespReply.Ok;
            default:
                return RespReply.Error($"ERR Unrecognized option '{RespErrors.Text(attribute)}'");
        }
    }

    /// <summary>
    /// AUTH [user] password. GTStore has no passwords and one user, as a Redis whose default user
    /// has none: the password alone is refused with Redis's error, a user and password are
    /// accepted for "default" (<see cref="SignIn"/>).
    /// </summary>
    private static RespReply Auth(RespCommand command) => command.Count switch
    {
        2 => RespReply.Error(
            "ERR AUTH <password> called without any password configured for the default user. "
            + "Are you sure your configuration is correct?"),
        3 => SignIn(command, 1) ?? RespReply.Ok,
        _ => RespErrors.Syntax,
    };

    /// <summary>
    /// The user named at <paramref name="userAt"/> (AUTH, HELLO AUTH) signs in with any password
    /// if it is "default", the only user; null when accepted, else Redis's WRONGPASS error.
    /// </summary>
    private static RespReply? SignIn(RespCommand command, int userAt) =>
        command.ArgIs(userAt, "default") ? null : RespReply.Error("WRONGPASS invalid username-password pair or user is disabled.");

    /// <summary>
    /// HELLO [protover [AUTH user pass] [SETNAME name]]: only RESP2 is spoken; AUTH signs in as
    /// the AUTH command does (<see cref="SignIn"/>).
    /// </summary>
    private RespReply Hello(RespCommand command)
    {
        if (command.Count > 1)
        {
            if (!RespInfo.TryParseInteger(command[1], out long version))
            {
                return RespReply.Error("ERR Protocol version is not an integer or out of range");
            }

            if (version != 2)
            {
                return RespReply.Error("NOPROTO unsupported protocol version");
            }
        }

        byte[]? name = null;
        for (int i = 2; i < command.Count; i++)
        {
            if (command.ArgIs(i, "AUTH") && i + 2 < command.Count)
            {
                if (SignIn(command, i + 1) is { } wrongUser)
                {
                    return wrongUser;
                }

                i += 2;
            }
            else if (command.ArgIs(i, "SETNAME") && i + 1 < command.Count)
            {
                name = command[++i];
            }
            else
            {
                return RespReply.Error($"ERR Syntax error in HELLO option '{RespErrors.Text(command[i])}'");
            }
        }

        if (name is not null && SetName(name) is { IsError: true } refused)
        {
            return refused;
        }

        return RespInfo.Hello(Id);
    }
}
