import {
  create,
  createRegistry,
  type DescFile,
  type DescService,
  type MessageInitShape,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionResponseSchema,
} from "../gen/grpc/reflection/v1/reflection_pb.js";

type ResponseInit = MessageInitShape<typeof ServerReflectionResponseSchema>;

/** Every file the services are defined in, plus their imports, transitively, by proto name. */
function collectFiles(services: readonly DescService[]): Map<string, DescFile> {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const dep of file.dependencies) visit(dep);
  };
  for (const service of services) visit(service.file);
  return files;
}

/**
 * Finds the type a reflection symbol names. Symbols may name a method, field or enum value
 * (`pkg.Service.Method`), which the registry does not index: strip trailing components
 * until a type matches.
 */
function lookupSymbol(registry: Registry, symbol: string): DescFile | undefined {
  let name = symbol;
  for (;;) {
    const desc = registry.get(name);
    if (desc) return desc.file;
    const dot = name.lastIndexOf(".");
    if (dot <= 0) return undefined;
    name = name.slice(0, dot);
  }
}

/**
 * gRPC server reflection (grpc.reflection.v1), answered from the generated descriptors of
 * the served services, so `buf curl`, grpcurl and Postman work without a local schema.
 * connect-es has no implementation of its own (connect-es issue #507).
 *
 * File answers carry the file and the imports this stream has not sent yet (as grpc-go
 * does), including google/protobuf well-known types: clients need the whole closure to
 * build a descriptor pool.
 */
export function reflectionRoutes(services: readonly DescService[]) {
  const all = [...services, ServerReflection];
  const files = collectFiles(all);
  const registry = createRegistry(...files.values());
  const serviceNames = [...new Set(all.map((s) => s.typeName))].sort();

  return (router: ConnectRouter) => {
    router.service(ServerReflection, {
      async *serverReflectionInfo(requests) {
        const sent = new Set<string>();
        const fileResponse = (file: DescFile): ResponseInit["messageResponse"] => {
          const out: Uint8Array[] = [];
          const add = (f: DescFile, force: boolean) => {
            if (sent.has(f.proto.name) && !force) return;
            sent.add(f.proto.name);
            out.push(toBinary(FileDescriptorProtoSchema, f.proto));
            for (const dep of f.dependencies) add(dep, false);
          };
          add(file, true);
          return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
        };
        const notFound = (what: string): ResponseInit["messageResponse"] => ({
          case: "errorResponse",
          value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
        });
        const answer = (req: ServerReflectionRequest): ResponseInit["messageResponse"] => {
          const r = req.messageRequest;
          switch (r.case) {
            case "listServices":
              return {
                case: "listServicesResponse",
                value: { service: serviceNames.map((name) => ({ name })) },
              };
            case "fileByFilename": {
              const file = files.get(r.value);
              return file ? fileResponse(file) : notFound(`file ${r.value}`);
            }
            case "fileContainingSymbol": {
              const file = lookupSymbol(registry, r.value);
              return file ? fileResponse(file) : notFound(`symbol ${r.value}`);
            }
            case "fileContainingExtension": {
              const { containingType, extensionNumber } = r.value;
              for (const desc of registry) {
                if (
                  desc.kind === "extension" &&
                  desc.extendee.typeName === containingType &&
                  desc.number === extensionNumber
                ) {
                  return fileResponse(desc.file);
                }
              }
              return notFound(`extension ${containingType}(${extensionNumber})`);
            }
            case "allExtensionNumbersOfType": {
              if (registry.getMessage(r.value) === undefined) return notFound(`type ${r.value}`);
              const numbers: number[] = [];
              for (const desc of registry) {
                if (desc.kind === "extension" && desc.extendee.typeName === r.value) {
                  numbers.push(desc.number);
                }
              }
              return {
                case: "allExtensionNumbersResponse",
                value: { baseTypeName: r.value, extensionNumber: numbers },
              };
            }
            default:
              return {
                case: "errorResponse",
                value: { errorCode: Code.InvalidArgument, errorMessage: "empty request" },
              };
          }
        };
        for await (const req of requests) {
          yield create(ServerReflectionResponseSchema, {
            validHost: req.host,
            originalRequest: req,
            messageResponse: answer(req),
          });
        }
      },
    });
  };
}
